#!/usr/bin/env python3
"""Fail when a module of the package reads another module's private names.

    python scripts/private_names.py            # the violations not allowed below (exit 1 if any)
    python scripts/private_names.py --all      # every violation, the allowed ones too

A module that needs a name of another module asks for a public one (no leading underscore), or
has it passed in: a private name is one its module may rename or drop without looking further.
What counts, read with ``ast`` (the package is never imported):

- ``from X import _name``, where ``X`` is a module of the package;
- importing a private module (``_x.py``, or a package ``_x/``) from outside the package that holds
  it: ``mcp_client_auth/_portal.py`` belongs to the whole package, so every module of it may
  import it, while ``mcp_client_auth/store/_x.py`` would be for ``store`` and below only. That is
  what a leading underscore on a module says in Python: internal to its package;
- ``obj._attr`` where no code of the same module defines ``_attr``. That holds for ``self``
  too: a subclass reading its base class's private member, when the base lives in another
  module, reads that module's private name. A class may read its own private members on another
  instance of itself (as ``__eq__`` does): the module defines them;
- ``getattr``/``hasattr``/``setattr``/``delattr`` with a private name spelt as a string, unless
  it is ``self`` or ``cls`` asking for a name its own module defines: a probe for an optional
  capability is a typed Protocol instead.

Dunder names (``__name__``) are public. A few underscore names are public API of the standard
library (``namedtuple._replace``, ``sys._getframe``...): :data:`PUBLIC_UNDERSCORE` lists them.

:data:`ALLOWED` lists the violations known when the check was written, to be removed as the
modules are changed; an entry that matches nothing any more fails too, so the list only shrinks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from import_graph import DEFAULT_ROOT, PACKAGE, absolute, module_names

PROBES = {"getattr", "hasattr", "setattr", "delattr"}
OWN = {"self", "cls"}
# Names with a leading underscore that are documented, public API of what they belong to.
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_field_defaults", "_make", "_getframe"}

# (file under the repository, what) of each violation tolerated for now; the line number in the
# comment is where it stood when listed. Matched without the line, so edits above it do not move
# it out of the list.
ALLOWED: set[tuple[str, str]] = set()


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the repository, with forward slashes
    line: int
    what: str  # what is read, as the source spells it: "from .flow import _x", "obj._attr"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_module_owner(target: str) -> str | None:
    """The package a private module of ours is internal to, or ``None`` when it is public."""
    parts = target.split(".")
    if parts[0] != PACKAGE:
        return None
    for index, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:index])
    return None


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def defined_names(tree: ast.AST) -> set[str]:
    """Every name the module's own code defines: functions, classes, assignment targets (plain
    names, and attributes of ``self`` or ``cls``), annotated class fields, parameters, imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            if is_own(node.value):  # other._attr = ... writes someone else's member
                names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def is_own(node: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: the code's own object."""
    if isinstance(node, ast.Name):
        return node.id in OWN
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def check_module(root: Path, module: str, path: Path) -> list[Violation]:
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    shown = path.relative_to(root.parent).as_posix()
    own_names = defined_names(tree)
    found: list[Violation] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(Violation(shown, getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = absolute(module, is_package, node)
            spelt = f"from {'.' * node.level}{node.module or ''} import"
            owner = private_module_owner(source)
            if owner is not None and not inside(module, owner):
                flag(node, f"{spelt} {', '.join(a.name for a in node.names)}")
            elif inside(source, PACKAGE):
                for alias in node.names:
                    # a private submodule (``from . import _codec``) is judged as a module
                    owner = private_module_owner(f"{source}.{alias.name}")
                    if is_private(alias.name) and (owner is None or not inside(module, owner)):
                        flag(node, f"{spelt} {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                owner = private_module_owner(alias.name)
                if owner is not None and not inside(module, owner):
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.Attribute):
            if (
                is_private(node.attr)
                and node.attr not in PUBLIC_UNDERSCORE
                and node.attr not in own_names
            ):
                flag(node, f"{ast.unparse(node.value)}.{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in PROBES
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and not (is_own(node.args[0]) and node.args[1].value in own_names)
        ):
            flag(node, f'{node.func.id}({ast.unparse(node.args[0])}, "{node.args[1].value}")')
    return found


def violations(root: Path = DEFAULT_ROOT) -> list[Violation]:
    """Every violation in the package under ``root``, sorted by file and line."""
    found: list[Violation] = []
    for module, path in module_names(root).items():
        found += check_module(root, module, path)
    return sorted(set(found))


def judge(
    found: list[Violation], allowed: set[tuple[str, str]]
) -> tuple[list[Violation], list[tuple[str, str]]]:
    """(the violations not allowed, the allowed entries that match no violation)."""
    seen = {(v.path, v.what) for v in found}
    return (
        [v for v in found if (v.path, v.what) not in allowed],
        sorted(allowed - seen),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list the allowed violations too")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the package's folder")
    args = parser.parse_args(argv)
    found = violations(args.root)
    allowed = ALLOWED if args.root.resolve() == DEFAULT_ROOT else set()
    new, stale = judge(found, allowed)
    for violation in found if args.all else new:
        print(violation)
    for path, what in stale:
        print(f"{path}: {what}: allowed in ALLOWED but no longer found; remove the entry")
    if not new and not stale:
        print(f"no private names read across modules ({len(found)} allowed)", file=sys.stderr)
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
