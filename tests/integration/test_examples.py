"""Every file in ``examples/`` runs, as a user runs it, against the real servers: the REAL
authorization server (oidc-provider) and an MCP server of the ``mcp`` SDK (``mcp_server.py``).

The examples use the default login (``BrowserLogin``: a loopback listener and the system
browser). Here the "browser" is ``$BROWSER``, which ``webbrowser`` honours: a small program
that does what a browser does with the authorization server's ``INTERACTION_MODE=auto``
(follows its redirects, with cookies, back to the example's loopback listener) and notes each
launch, so the tests can count logins. Nothing in the examples knows it is being tested.

``RUNS`` names the test that runs each example; every example must be in it, and each of those
tests must really run its example (``Runner`` notes every run, and a check after each test
compares), so an example cannot rot unnoticed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.processes import free_port

from .conftest import StartStack
from .harness import ROOT, Stack, start_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXAMPLES = ROOT / "examples"

# The examples that talk to an MCP server through one client each: one login, then reuse.
CLIENTS = [
    "mcp_sdk_client",
    "fastmcp_client",
    "mcp_v1_client",
    "httpx_client",
    "httpx_async_client",
    "httpx2_client",
    "httpx2_async_client",
    "fastmcp_own_oauth",
    "mcp_sdk_own_provider",
]
# The examples written by hand against the MCP protocol (no SDK): they print the server's name
# and its tools.
HAND_WRITTEN = {"httpx_client", "httpx_async_client", "httpx2_client", "httpx2_async_client"}
ELSEWHERE = "(run elsewhere)"
# Each example, and the test that runs it (the quickstart has a file of its own: it starts its
# own demo servers).
RUNS: dict[str, str] = {
    **dict.fromkeys(CLIENTS, "test_example_logs_in_once_then_reuses_the_tokens"),
    "cli_tool": "test_cli_tool_on_the_real_servers",
    "redis_fleet": "test_redis_fleet_logs_in_once_and_refreshes_once",
    "quickstart": ELSEWHERE,
}

# The "browser" (``$BROWSER``): returns at once, as a browser's launcher does, and follows the
# authorization server's redirects back to the example's loopback listener in the background.
FAKE_BROWSER = Path(__file__).with_name("fake_browser.py")


def redirect_port_args(example: str) -> list[str]:
    """The mcp SDK's own provider needs a fixed redirect port: a free one here."""
    return ["--port", str(free_port())] if example == "mcp_sdk_own_provider" else []


@dataclass
class RunLog:
    """The examples run so far in this session, in order (``Runner`` appends)."""

    names: list[str] = field(default_factory=list)


RAN = RunLog()


@pytest.fixture(autouse=True)
def runs_what_it_claims(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that passed, it ran the examples ``RUNS`` assigns it (a failed test
    has already said what went wrong: its call report is counted before this teardown)."""
    start, failed = len(RAN.names), request.session.testsfailed
    yield
    if request.session.testsfailed != failed:
        return
    name = request.node.originalname
    callspec = getattr(request.node, "callspec", None)
    claimed = {e for e, test in RUNS.items() if test == name}
    if callspec is not None and "example" in callspec.params:
        claimed = {callspec.params["example"]}
    missing = claimed - set(RAN.names[start:])
    assert not missing, f"{name} did not run {sorted(missing)}"


class Runner:
    """Runs examples with one store folder, one key and one fake browser."""

    def __init__(self, folder: Path, key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.browser_log = folder / "browser.log"
        self.env = {
            **os.environ,
            "MCP_CLIENT_AUTH_HOME": str(folder / "home"),
            "MCP_CLIENT_AUTH_KEY": key,
            "BROWSER": f"{sys.executable} {FAKE_BROWSER} %s",
            "FAKE_BROWSER_LOG": str(self.browser_log),
            "PYTHONPATH": str(ROOT),  # this checkout's mcp_client_auth, whatever pip installed
        }

    def logins(self) -> int:
        """How many times an example opened the browser."""
        return len(self.browser_log.read_text().splitlines()) if self.browser_log.exists() else 0

    def run(self, python: str, example: str, *args: str, timeout: float = 120) -> str:
        """Run ``examples/<example>.py``; its stdout. It must exit 0."""
        proc = self.attempt(python, example, *args, timeout=timeout)
        assert proc.returncode == 0, f"{example} {args}: exit {proc.returncode}\n{proc.stderr}"
        return proc.stdout

    def attempt(
        self, python: str, example: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``examples/<example>.py`` whatever its exit status."""
        RAN.names.append(example)
        return subprocess.run(
            [python, str(EXAMPLES / f"{example}.py"), *args],
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("examples"), AT_TTL="600")
    yield started
    started.stop()


TOOLS = "echo: Return the text unchanged."


@pytest.mark.parametrize("example", CLIENTS)
def test_example_logs_in_once_then_reuses_the_tokens(
    example: str, stack: Stack, mcp_v1: str, store_key: str, tmp_path: Path
) -> None:
    runner = Runner(tmp_path, store_key)
    python = mcp_v1 if example == "mcp_v1_client" else sys.executable
    port = redirect_port_args(example)  # the same in both runs, as a user's would be
    if example in HAND_WRITTEN:
        assert runner.run(python, example, stack.url).splitlines() == [
            "server: mcp-client-auth integration server",
            "tools: echo, whoami, save_note",
        ]
    else:
        out = runner.run(python, example, stack.url, "echo", '{"text": "hello"}', *port)
        assert out == "hello\n"
    assert runner.logins() == 1

    again = runner.run(python, example, stack.url, *port)  # a new process: the stored tokens
    assert "echo" in again
    assert runner.logins() == 1


def test_cli_tool_on_the_real_servers(stack: Stack, store_key: str, tmp_path: Path) -> None:
    """``cli_tool.py`` as a user runs it: refuses to log in under ``--no-login`` and says what
    to run; lists the tools after one browser login; calls a tool in a new process with the
    stored tokens; logs in again, once, for a tool that needs one more scope (step-up)."""
    runner = Runner(tmp_path, store_key)
    refused = runner.attempt(sys.executable, "cli_tool", "--no-login", stack.url)
    assert refused.returncode == 1 and refused.stdout == "", refused.stderr
    assert f"mcp-client-auth login {stack.url}" in refused.stderr
    assert runner.logins() == 0

    listed = runner.run(sys.executable, "cli_tool", stack.url)
    assert [line.split()[0] for line in listed.splitlines()] == ["echo", "whoami", "save_note"]
    assert runner.logins() == 1

    called = runner.run(sys.executable, "cli_tool", "--no-login", stack.url, "echo", "text=hi")
    assert called == "hi\n"
    assert runner.logins() == 1

    saved = runner.run(sys.executable, "cli_tool", stack.url, "save_note", "text=a note")
    assert saved == "saved: a note\n"
    assert runner.logins() == 2  # the wider scope's login


def test_every_example_is_run_by_a_test() -> None:
    """Every file in ``examples/`` has a test in ``RUNS`` (whose run ``runs_what_it_claims``
    checks), and every test named there exists."""
    listing = {p.stem for p in EXAMPLES.glob("*.py")}
    assert sorted(listing - RUNS.keys()) == [], "examples no test runs"
    assert sorted(RUNS.keys() - listing) == [], "RUNS names examples that do not exist"
    tests_here = {name for name in globals() if name.startswith("test_")}
    assert {t for t in RUNS.values() if t != ELSEWHERE} <= tests_here


def test_the_quickstart_is_run_by_its_own_tests() -> None:
    """The one example run elsewhere: ``test_quickstart.py`` beside this file runs it."""
    from tests.integration.test_quickstart import QUICKSTART, run_quickstart

    assert [e for e, t in RUNS.items() if t == ELSEWHERE] == ["quickstart"]
    assert QUICKSTART == EXAMPLES / "quickstart.py"
    assert callable(run_quickstart)


def test_redis_fleet_logs_in_once_and_refreshes_once(
    mcp_stack: StartStack, redis_url: str, store_key: str, tmp_path: Path
) -> None:
    """Three processes share one Redis-backed store: one login; after expiry, one refresh (a
    second use of the rotated refresh token would make the server revoke the fleet's login)."""
    # The provider refreshes early by at most half a token's lifetime: these 40 s tokens count
    # as expired 20 s after issue, and still work for the 20 s after that.
    stack = mcp_stack(AT_TTL="40")
    runner = Runner(tmp_path, store_key)
    fleet = [stack.url, "--redis", redis_url, "--workers", "3"]

    def grants() -> list[str]:
        found = []
        for event in stack.events():
            if event["event"] == "registration":
                found.append("registration")
            elif event["event"] in ("grant.success", "grant.error"):
                found.append(f"{event['grant_type']}{'!' if 'error' in event else ''}")
        return found

    out = runner.run(sys.executable, "redis_fleet", *fleet)
    assert sorted(out.splitlines()) == [f"worker {n}: 3 tools" for n in range(3)]
    assert runner.logins() == 1
    assert grants()[:2] == ["registration", "authorization_code"], grants()
    assert set(grants()[2:]) <= {"refresh_token"}, grants()  # a slow worker may refresh

    from mcp_client_auth import TokenStore

    record = asyncio.run(TokenStore.redis(redis_url, key=store_key).get(stack.url))
    assert record is not None and record.tokens is not None
    assert record.tokens.expires_at is not None
    issued_at = record.tokens.issued_at
    assert issued_at is not None
    wait_until(issued_at + (record.tokens.expires_at - issued_at) / 2 + 0.5)
    before = len(grants())
    started = time.time()
    out = runner.run(sys.executable, "redis_fleet", *fleet)
    assert sorted(out.splitlines()) == [f"worker {n}: 3 tools" for n in range(3)]
    assert runner.logins() == 1
    assert grants()[before:] == ["refresh_token"], (grants(), time.time() - started)
