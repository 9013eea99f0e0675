"""Load a checker of ``scripts/`` as a module, for the tests that drive its functions, and
write the small packages they are tried on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py``, imported under ``name``."""
    if str(SCRIPTS) not in sys.path:  # as when run: the scripts import each other
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass of the script looks its module up while it is made
    spec.loader.exec_module(module)
    return module


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A package ``mcp_client_auth`` under ``root`` made of ``files`` (path -> source)."""
    package = root / "mcp_client_auth"
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python scripts/<name>.py <args>``, as a contributor runs it; its exit and output."""
    argv = [sys.executable, str(SCRIPTS / f"{name}.py"), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False)
