"""The command-line tool is built on the public interface only (issue 5).

What is proved: every import ``mcp_client_auth/cli.py`` makes from the package is a name that
``mcp_client_auth`` exports (in its ``__all__``), imported from the package itself, never from
one of its modules; so the tool does nothing a library user could not, and those names
(``TokenStore.default_directory``, ``default_exists``, ``probe_keyring``...) resolve.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_client_auth
from mcp_client_auth import cli

SOURCE = Path(cli.__file__).read_text(encoding="utf-8")


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
UTILITIES = {("._eager", "run_eagerly"), (".proxy.command", "add_proxy_command")}


def test_the_cli_imports_only_public_names_from_the_package() -> None:
    imports = package_imports(SOURCE)
    assert imports, "the CLI imports nothing from the package?"
    for module, name in imports:
        if (module, name) in UTILITIES:
            continue
        assert module in (".", "mcp_client_auth"), f"cli.py imports {name} from {module}"
        assert name in mcp_client_auth.__all__, f"cli.py imports {name}, which is not exported"
        assert getattr(mcp_client_auth, name) is not None


def test_the_check_sees_a_private_import() -> None:
    private = "from .store.default import store_directory\nfrom . import _WHERE\n"
    assert package_imports(private) == [(".store.default", "store_directory"), (".", "_WHERE")]


def test_everything_exported_resolves() -> None:
    for name in mcp_client_auth.__all__:
        assert getattr(mcp_client_auth, name) is not None, name
    assert callable(mcp_client_auth.TokenStore.default_directory)
    assert callable(mcp_client_auth.TokenStore.default_exists)
