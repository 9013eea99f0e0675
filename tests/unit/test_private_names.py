"""No module of the package reads another module's private names (``scripts/private_names.py``)."""

from __future__ import annotations

from pathlib import Path

from .scripts import load_script, run_script, write_package


def found_in(tmp_path: Path, files: dict[str, str]) -> list[str]:
    """``path:line: what`` of each violation in a package made of ``files``."""
    package = write_package(tmp_path, files)
    return [str(v) for v in load_script("private_names").violations(package)]


def test_the_package_reads_no_private_name_of_another_module() -> None:
    run = run_script("private_names")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no private names read across modules" in run.stderr


def test_importing_a_private_name_of_another_module_is_flagged(tmp_path: Path) -> None:
    found = found_in(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "_secret = 1\npublic = 2\n",
            "b.py": "from .a import _secret, public\nfrom mcp_client_auth.a import _secret as s\n",
            "c.py": "from .a import public\nfrom os import _exit\n",  # not ours: not judged
        },
    )
    assert found == [
        "mcp_client_auth/b.py:1: from .a import _secret",
        "mcp_client_auth/b.py:2: from mcp_client_auth.a import _secret",
    ]


def test_a_private_module_is_for_its_own_package(tmp_path: Path) -> None:
    found = found_in(
        tmp_path,
        {
            "__init__.py": "from . import _lazy\n",
            "_lazy.py": "",  # the whole package's
            "store/__init__.py": "",
            "store/_codec.py": "",  # store's, and below
            "store/disk.py": "from . import _codec\nfrom .._lazy import x\n",
            "store/deep/__init__.py": "from .._codec import y\n",
            "cli.py": "from .store._codec import z\nimport mcp_client_auth.store._codec\n",
            "login.py": "from .store import _codec\n",
        },
    )
    assert found == [
        "mcp_client_auth/cli.py:1: from .store._codec import z",
        "mcp_client_auth/cli.py:2: import mcp_client_auth.store._codec",
        "mcp_client_auth/login.py:1: from .store import _codec",
    ]


def test_an_attribute_is_private_to_the_module_that_defines_it(tmp_path: Path) -> None:
    base = (
        "class Base:\n"
        "    def __init__(self):\n        self._flow = 1\n"
        "    def __eq__(self, other):\n        return self._flow == other._flow\n"
    )
    found = found_in(
        tmp_path,
        {
            "__init__.py": "",
            "base.py": base,
            "sub.py": (
                "from .base import Base\n"
                "class Sub(Base):\n"
                "    def patch(self):\n        self._flow = 2\n"  # it writes it: now its own
                "def peek(store):\n    return store._lock, store.__class__, store._replace()\n"
            ),
            "grant.py": (
                "from .base import Base\n"
                "class Grant(Base):\n    def go(self):\n        return self._flow\n"
                "def patch(provider):\n    provider._http = None\n"  # another's member
            ),
        },
    )
    assert found == [
        "mcp_client_auth/grant.py:4: self._flow",
        "mcp_client_auth/grant.py:6: provider._http",
        "mcp_client_auth/sub.py:6: store._lock",
    ]


def test_a_probe_for_a_private_name_is_flagged(tmp_path: Path) -> None:
    found = found_in(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": (
                "class A:\n"
                "    _mine = None\n"
                "    def go(self, store):\n"
                '        getattr(self, "_mine")\n'
                '        getattr(self, "_subclass_has", None)\n'
                '        hasattr(store, "_lock")\n'
                '        setattr(store, "_mine", 1)\n'
                '        getattr(store, "public")\n'
            ),
        },
    )
    assert found == [
        'mcp_client_auth/a.py:5: getattr(self, "_subclass_has")',
        'mcp_client_auth/a.py:6: hasattr(store, "_lock")',
        'mcp_client_auth/a.py:7: setattr(store, "_mine")',
    ]


def test_an_allowed_entry_that_matches_nothing_fails() -> None:
    script = load_script("private_names")
    found = [script.Violation("mcp_client_auth/a.py", 3, "x._y")]
    assert script.judge(found, {("mcp_client_auth/a.py", "x._y")}) == ([], [])
    new, stale = script.judge(found, {("mcp_client_auth/gone.py", "z._w")})
    assert new == found
    assert stale == [("mcp_client_auth/gone.py", "z._w")]
