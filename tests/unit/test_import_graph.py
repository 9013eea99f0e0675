"""The package's import graph has no cycles (checked by ``scripts/import_graph.py``)."""

from __future__ import annotations

from pathlib import Path

from .scripts import load_script, run_script, write_package


def test_the_package_has_no_import_cycle() -> None:
    run = run_script("import_graph", "--cycles")
    assert run.returncode == 0, run.stderr
    assert "no import cycles" in run.stderr


def test_a_lazy_import_closing_a_loop_is_a_cycle(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "store/__init__.py": "from .a import A\n",
            "store/a.py": "from .b import B\nA = 1\n",
            "store/b.py": "B = 2\ndef late():\n    from . import a\n    return a\n",
        },
    )
    script = load_script("import_graph")
    graph = script.import_graph(package)
    assert graph["mcp_client_auth.store.b"] == {"mcp_client_auth.store.a", "mcp_client_auth.store"}
    # b's "from . import a" runs the package's __init__ too, which imports a: all three loop
    loop = ["mcp_client_auth.store", "mcp_client_auth.store.a", "mcp_client_auth.store.b"]
    assert script.cycles(graph) == [loop]
    assert script.main(["--cycles", "--root", str(package)]) == 1


def test_imports_for_type_checking_only_are_no_edge(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "import mcp_client_auth.b\n",
            "b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from .a import thing\nelse:\n    from . import c\n"
            ),
            "c.py": "",
        },
    )
    script = load_script("import_graph")
    graph = script.import_graph(package)
    assert graph["mcp_client_auth.b"] == {"mcp_client_auth", "mcp_client_auth.c"}
    assert script.cycles(graph) == []


def test_a_lazy_name_is_an_edge_to_the_module_behind_it(tmp_path: Path) -> None:
    lazy = "from ._lazy import lazy_names\n"
    package = write_package(
        tmp_path,
        {
            "__init__.py": lazy + '_WHERE = {"Login": ".login"}\n'
            "__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())\n",
            "_lazy.py": "",
            "login/__init__.py": lazy + '__all__ = ["Login"]\n'
            "__getattr__, __dir__ = lazy_names(__name__, dict.fromkeys(__all__, '.base'), {})\n",
            "login/base.py": "def back():\n    from .. import cli\n",
            "cli.py": "def run():\n    from . import Login\n",
        },
    )
    script = load_script("import_graph")
    graph = script.import_graph(package)
    assert graph["mcp_client_auth.cli"] == {
        "mcp_client_auth",
        "mcp_client_auth.login",
        "mcp_client_auth.login.base",
    }
    assert script.cycles(graph) == [["mcp_client_auth.cli", "mcp_client_auth.login.base"]]
