"""The README is a test fixture: every ```python block in it runs, as written, or is listed here.

Why: a user copies the first snippet and runs it, so a snippet that only looks right (a bare
``ping`` with no MCP handshake gets ``400 Missing session ID`` from a real MCP server) fails the
user at the first step. So each block runs in a process of its own, as a user's script would,
against the demo servers (the ``mcp`` SDK's MCP server and the demo authorization server, one
pair for the whole module, on 127.0.0.1), with only the server URL replaced. The default
``BrowserLogin`` logs in through a stand-in browser (``$BROWSER``) that follows the demo
server's automatic approval back to the loopback listener, as a real one would. A block that
cannot run here is a fragment, listed in :data:`FRAGMENTS` with the reason; the list cannot go
stale (each entry must match one block).

The README's two set-up commands: the quickstart's is run by ``test_quickstart.py`` beside
this file; here, its claim that the ``demo`` extra is all the quickstart and the demo servers
need, and ``.ci/run``'s claim that it checks for what it does not install, first, and says which
is missing.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER = "https://mcp.example.com/mcp"

#: Blocks that are not programs, by text that only they contain, with the reason.
FRAGMENTS = {
    "    server_url,  # the protected resource": (
        "the constructor's signature with its defaults, a reference, not a program"
    ),
    "return session.id_token": (
        "needs an enterprise identity provider, its client and secrets, and a signed-in user"
    ),
    "client_metadata=client_metadata,  # yours, as before": (
        "the lines that change in the user's own SDK code; the whole program is"
        " examples/mcp_sdk_own_provider.py, run by the examples' tests"
    ),
}

#: What a block that prints must print (a piece of it), by a line that only it contains.
PRINTS = {
    "print(await client.list_tools())": "name='whoami'",
    'print(response.status_code, response.headers.get("mcp-session-id"))': "200 ",
}

# The user's browser: tests/integration/fake_browser.py, which returns at once as a browser's
# launcher does and follows the demo server's automatic approval back to the loopback listener,
# waiting for a listener started only after the browser was opened (FastMCP's), as a person
# would reload the page.
FAKE_BROWSER = ROOT / "tests" / "integration" / "fake_browser.py"


def fenced_blocks(text: str = README) -> list[tuple[str, str]]:
    """Every fenced block: (its language, or "", its text), in order."""
    blocks: list[tuple[str, str]] = []
    language: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if language is None and line.startswith("```"):
            language, lines = line[3:].strip(), []
        elif language is not None and line.strip() == "```":
            blocks.append((language, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, "an unclosed fence in the README"
    return blocks


def python_blocks(text: str = README) -> list[str]:
    return [body for language, body in fenced_blocks(text) if language == "python"]


def fragment_reason(block: str) -> str | None:
    for marker, reason in FRAGMENTS.items():
        if marker in block:
            return reason
    return None


RUNNABLE = [b for b in python_blocks() if fragment_reason(b) is None]
# "block-3": the fourth ```python block of the README, counting from 0
IDS = [f"block-{python_blocks().index(b)}" for b in RUNNABLE]


def test_every_python_block_is_run_or_listed_as_a_fragment() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5, "the README's python blocks were not found"
    for marker in FRAGMENTS:
        matching = [b for b in blocks if marker in b]
        assert len(matching) == 1, f"FRAGMENTS entry {marker!r} matches {len(matching)} blocks"
    assert len(RUNNABLE) == len(blocks) - len(FRAGMENTS)
    for block in RUNNABLE:  # and each is a whole program: it parses on its own
        ast.parse(block)
        if "print(" in block:  # what it prints is checked, not only that it did not crash
            assert any(line in block for line in PRINTS), block


def test_the_first_block_is_a_whole_mcp_client() -> None:
    first = python_blocks()[0]
    assert fragment_reason(first) is None
    assert "OAuthClientProvider(" in first and "list_tools()" in first


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    sys.path.insert(0, str(ROOT / "examples"))
    from demo_servers import start_demo_servers

    folder = tmp_path_factory.mktemp("readme")
    key = Fernet.generate_key().decode()
    env = {
        **os.environ,
        "MCP_CLIENT_AUTH_HOME": str(folder / "store"),
        "MCP_CLIENT_AUTH_KEY": key,  # no keyring, no key file: the test leaves nothing behind
        "MY_FERNET_KEY": key,
        "BROWSER": f"{sys.executable} {FAKE_BROWSER} %s",
        "FAKE_BROWSER_LOG": str(folder / "browser.log"),
        "PYTHONUNBUFFERED": "1",
    }
    servers = start_demo_servers()
    try:
        yield servers.mcp_url, env
    finally:
        servers.stop()


@pytest.mark.parametrize("block", RUNNABLE, ids=IDS)
def test_the_block_runs_as_written(
    block: str, demo_env: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = demo_env
    script = tmp_path / "snippet.py"
    script.write_text(block.replace(PLACEHOLDER, url))
    run = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    for line, expected in PRINTS.items():
        if line in block:
            assert expected in run.stdout, run.stdout


# -- the set-up commands ---------------------------------------------------------------------


def _requirements(distribution: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions ``distribution[extras]`` installs, itself included (as installed here)."""
    seen: set[str] = set()
    todo = [(distribution, extras)]
    while todo:
        name, wanted = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            spec, _, marker = requirement.partition(";")
            extra = re.search(r"extra == ['\"]([^'\"]+)['\"]", marker)
            if extra and extra.group(1) not in wanted:
                continue
            if "sys_platform" in marker and sys.platform not in marker:
                continue
            found = re.match(r"[A-Za-z0-9_.\-]+", spec.strip())
            assert found, requirement
            inner = re.search(r"\[([^\]]+)\]", spec)
            todo.append((found.group(0), tuple(inner.group(1).split(",")) if inner else ()))
    return seen


def _third_party_imports(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    local = {"demo_servers", "mcp_client_auth", "examples"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def test_the_demo_extra_is_all_the_quickstart_and_the_demo_servers_import() -> None:
    """The README's first command installs '.[demo]' and nothing else, then runs these."""
    installed = _requirements("mcp-client-auth", ("demo",))
    owners = metadata.packages_distributions()
    paths = [
        ROOT / "examples" / "quickstart.py",
        *(ROOT / "examples" / "demo_servers").glob("*.py"),
    ]
    for module in sorted(_third_party_imports(paths)):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert dists & installed, f"{module} ({dists}) is not installed by '.[demo]'"


def test_ci_run_says_first_what_it_needs_and_does_not_install(tmp_path: Path) -> None:
    """`bash .ci/run` checks Python, Node and npm before anything else, naming the missing one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # what runs before the checks, and a real Python (not a version manager's shim); no node
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    run = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip() == (
        "bash .ci/run needs Node.js 20 or newer (node) (not installed by this script)"
    )
    assert run.stdout == ""


#: Every command block of the README, by its first line, and the test that runs it or checks
#: what it claims. A new block fails here until it is given one.
COMMAND_BLOCKS = {
    "python3 -m venv .venv && .venv/bin/pip install -e '.[demo]' && .venv/bin/python examples/"
    "quickstart.py": "test_quickstart.py runs the quickstart; the demo extra: above",
    "bash .ci/run": "test_ci_run_says_first_what_it_needs_and_does_not_install",
    "pip install -e .              # httpx, keyring, platformdirs, cryptography": (
        "test_every_extra_the_readme_installs_exists"
    ),
    "$ mcp-client-auth login https://mcp.example.com/mcp     # browser login, tokens stored": (
        "tests/cli: login, token, status, logout, doctor, each as a subprocess"
    ),
    ".venv/bin/python -m examples.demo_servers": (
        "tests/cli/test_first_hour.py::test_the_demo_servers_start_on_their_own_for_the_cli"
    ),
}


def command_blocks(text: str = README) -> list[str]:
    return [body for language, body in fenced_blocks(text) if language in ("", "bash", "sh")]


def test_every_command_block_is_run_by_a_test() -> None:
    firsts = [block.splitlines()[0] for block in command_blocks()]
    assert sorted(firsts) == sorted(COMMAND_BLOCKS), firsts


def test_every_extra_the_readme_installs_exists() -> None:
    named = set(re.findall(r"-e '\.\[([a-z0-9_-]+)\]'", README))
    assert {"demo", "httpx2", "redis"} <= named, named
    provided = set(metadata.metadata("mcp-client-auth").get_all("Provides-Extra") or [])
    assert named <= provided, (named, provided)
