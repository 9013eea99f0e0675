"""The command-line tool is built on the public interface only.

What is proved: every import a module of ``mcp_client_auth/cli/`` makes from the package (its
own modules aside) is a name that ``mcp_client_auth`` exports (in its ``__all__``), imported
from the package itself, never from one of its modules; so the tool does nothing a library user
could not, and those names (``TokenStore.default_directory``, ``default_exists``,
``probe_keyring``...) resolve.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_client_auth
from mcp_client_auth import cli

CLI_FOLDER = Path(cli.__file__).parent


def package_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) of every ``from`` import of the package in ``source``, at any depth."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module.split(".")[0] == "mcp_client_auth":
                found.extend((module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (alias.name, "")
                for alias in node.names
                if alias.name.split(".")[0] == "mcp_client_auth"
            )
    return found


# Helpers that give the CLI no power a user lacks (running a coroutine is anyone's to do),
# shared with the library rather than written twice.
# The proxy command lives in its own public package (``mcp_client_auth.proxy``, itself built on
# the provider and the store), which adds its subcommand to the parser.
UTILITIES = {
    ("mcp_client_auth.proxy.command", "add_proxy_command"),
}


def absolute(module: str, package: str) -> str:
    """``module`` as imported from ``package`` (``..x`` from ``a.b`` is ``a.x``)."""
    level = len(module) - len(module.lstrip("."))
    if not level:
        return module
    base = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join([*base, module[level:]] if module[level:] else base)


def test_the_cli_imports_only_public_names_from_the_package() -> None:
    sources = sorted(CLI_FOLDER.glob("*.py"))
    assert len(sources) > 1, "the CLI package has no modules?"
    imports = [
        (path.name, absolute(module, cli.__name__), name)
        for path in sources
        for module, name in package_imports(path.read_text(encoding="utf-8"))
    ]
    assert any(module == "mcp_client_auth" for _, module, _ in imports)
    for source, module, name in imports:
        if (module, name) in UTILITIES or module.startswith(cli.__name__ + "."):
            continue  # the CLI's own modules, or a shared utility
        assert module == "mcp_client_auth", f"cli/{source} imports {name} from {module}"
        assert name in mcp_client_auth.__all__, f"cli/{source} imports {name}, not exported"
        assert getattr(mcp_client_auth, name) is not None


def test_relative_imports_are_resolved_from_the_cli_package() -> None:
    assert absolute("..", "mcp_client_auth.cli") == "mcp_client_auth"
    assert absolute("..store", "mcp_client_auth.cli") == "mcp_client_auth.store"
    assert absolute(".output", "mcp_client_auth.cli") == "mcp_client_auth.cli.output"
    assert absolute("mcp_client_auth", "mcp_client_auth.cli") == "mcp_client_auth"


def test_the_check_sees_a_private_import() -> None:
    private = "from .store.default import store_directory\nfrom . import _WHERE\n"
    assert package_imports(private) == [(".store.default", "store_directory"), (".", "_WHERE")]


def test_everything_exported_resolves() -> None:
    for name in mcp_client_auth.__all__:
        assert getattr(mcp_client_auth, name) is not None, name
    assert callable(mcp_client_auth.TokenStore.default_directory)
    assert callable(mcp_client_auth.TokenStore.default_exists)
