#!/usr/bin/env python3
"""Print the package's import graph and fail on any cycle.

    python scripts/import_graph.py          # the graph, then the cycles (exit 1 if any)
    python scripts/import_graph.py --cycles # only the cycles

An edge ``a -> b`` means module ``a`` of ``mcp_client_auth`` imports module ``b`` of the package
when it runs: imports inside functions count (a lazy import still ties the two modules together),
imports under ``if TYPE_CHECKING:`` do not (they never run). Importing a name from a package
(``from .store import TokenStore``) is an edge to the package's ``__init__``, and to the submodule
when the name is one (``from . import flow``) or one of the package's lazy names (``lazy_names``
in ``_lazy.py``: ``from . import TokenStore`` imports the module the package maps it to, on
first use, so the edge goes from the module asking for the name). The source is read with
``ast`` and never imported, so the script works without the package's dependencies installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

PACKAGE = "mcp_client_auth"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (packages by their own name)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that can run: all of them but those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` in ``module`` reads from, as an absolute name."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _literal(tree: ast.Module, name: str) -> ast.expr | None:
    """The value a module-level ``name = ...`` assigns, if any."""
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node.value
    return None


def _named(tree: ast.Module, node: ast.expr) -> ast.expr:
    """``node``, or what a module-level assignment binds it to when it is a name."""
    return (_literal(tree, node.id) or node) if isinstance(node, ast.Name) else node


def _read(package: str, node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SystemExit(f"{package}: cannot read lazy_names' map {ast.unparse(node)}") from None


def _lazy_names(package: str, tree: ast.Module) -> dict[str, str]:
    """Name -> absolute module, from the package's ``lazy_names(__name__, where, ...)`` call.

    ``where`` is a dict literal (or a module-level name bound to one) or
    ``dict.fromkeys(<list of names>, "<module>")``; anything else is not understood and fails
    loudly, so the graph never silently loses edges.
    """
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "lazy_names"
    ]
    where: dict[str, str] = {}
    for call in calls:
        arg = _named(tree, call.args[1])
        if isinstance(arg, ast.Call) and ast.unparse(arg.func) == "dict.fromkeys":
            value = dict.fromkeys(
                _read(package, _named(tree, arg.args[0])), _read(package, arg.args[1])
            )
        else:
            value = _read(package, arg)
        for name, module in value.items():
            where[name] = package + module if module.startswith(".") else module
    return where


def import_graph(root: Path = DEFAULT_ROOT) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports at run time."""
    modules = module_names(root)
    trees = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in modules.items()}
    lazy = {m: _lazy_names(m, t) for m, t in trees.items()}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _run_time_imports(trees[module]):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                source = absolute(module, is_package, node)
                candidates = [source, *(f"{source}.{alias.name}" for alias in node.names)]
                for alias in node.names:  # a lazy name may lead to a package with lazy names
                    holder, seen = source, {source}
                    while lazy.get(holder, {}).get(alias.name, holder) not in seen:
                        holder = lazy[holder][alias.name]
                        seen.add(holder)
                        candidates.append(holder)
            targets.update(c for c in candidates if c in modules and c != module)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (every cycle lies inside one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", action="store_true", help="print only the cycles")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the package's folder")
    args = parser.parse_args(argv)
    graph = import_graph(args.root)
    if not args.cycles:
        for module in sorted(graph):
            print(f"{module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    found = cycles(graph)
    for group in found:
        inside = {m: sorted(t for t in graph[m] if t in group) for m in group}
        print(
            "cycle: " + "; ".join(f"{m} -> {', '.join(ts)}" for m, ts in inside.items()),
            file=sys.stderr,
        )
    if not found:
        print("no import cycles", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
