"""Fixtures for the CLI tests: the installed console script, run as a user runs it.

Why subprocesses: what the tool promises (stdout holds exactly the token, exit codes, one-line
errors, no secret anywhere in the output, no colour in a pipe) is about a process, its streams
and its exit status; only running it proves them. The servers are the demo authorization server
and MCP server (``examples/demo_servers``) in this process, on 127.0.0.1, so a test can look at
what the authorization server saw (registrations, refreshes, revocations).

Every test gets its own store folder and config folder, and no D-Bus session: there is no
keyring, so the store keeps its key in a key file, and the tests check that the tool says so.
Tests that want a keyring get a real one (``secret_service``, from ``tests/store``).

``run_cli`` runs the same tool in this process, with the same store and servers
(``inprocess.py``): the ``test_inprocess_*`` files check each command's every outcome that way.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from mcp_client_auth import ServerRecord, TokenStore
from mcp_client_auth.store import keys
from tests.store.conftest import (  # real Secret Services (private D-Bus + gnome-keyring)
    SecretService,
    locked_secret_service,
    secret_service,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from demo_servers import DemoServers, start_demo_servers

if TYPE_CHECKING:
    from .inprocess import InProcess

__all__ = [
    "AUTHORIZE",
    "CLI",
    "TIMEOUT",
    "Run",
    "console_script",
    "locked_secret_service",
    "one_redirect",
    "secret_service",
]

TIMEOUT = 60  # seconds for one CLI run: under pytest-timeout's 120, so the failure says which
_STORE_ENV = (
    "MCP_CLIENT_AUTH_KEY",
    "MCP_CLIENT_AUTH_HOME",
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "NO_COLOR",
    "BROWSER",
)
# PasteLogin prints the authorization URL indented, DeviceLogin the verification URL
AUTHORIZE = re.compile(r"^ {4}(https?://\S+\?\S+)$")


def console_script() -> list[str]:
    """The installed ``mcp-client-auth`` next to this interpreter (else ``python -m``)."""
    found = shutil.which("mcp-client-auth", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "mcp_client_auth"]


@dataclass
class Run:
    """One finished run of the tool."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class CLI:
    """Runs the tool with this test's store; every run is checked for colour in a pipe."""

    home: Path
    config: Path
    env: dict[str, str]
    runs: list[Run]

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Run:
        proc = subprocess.run(
            [*console_script(), *args],
            input=input,
            env={**self.env, **(env or {})},
            cwd=self.home.parent,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        run = Run(args, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        assert "\x1b[" not in run.output, f"colour or cursor codes in a pipe: {run.output!r}"
        assert "Traceback" not in run.output or "--debug" in args, run.output
        return run

    def login(
        self,
        url: str,
        *args: str,
        secret: str | None = None,
        browser: Callable[[str], str | None] | None = None,
        method: str = "--paste",
    ) -> Run:
        """``login URL --paste`` (or ``method``), playing the user: open the URL the login
        prints on stderr with ``browser`` (default: one GET, since the demo AS approves at
        once and redirects) and paste what it returns, if anything, into stdin."""
        browse = browser or one_redirect
        argv = ["login", url, method, *args]
        proc = subprocess.Popen(
            [*console_script(), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.home.parent,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        if secret is not None:
            proc.stdin.write(secret + "\n")
            proc.stdin.flush()
        stderr: list[str] = []
        failures: list[BaseException] = []

        def user() -> None:
            assert proc.stderr is not None and proc.stdin is not None
            answered = False
            for line in proc.stderr:
                stderr.append(line)
                found = AUTHORIZE.search(line)
                if found and not answered:
                    answered = True
                    try:
                        pasted = browse(found.group(1))
                        if pasted is not None:
                            proc.stdin.write(pasted + "\n")
                            proc.stdin.flush()
                    except BaseException as exc:
                        failures.append(exc)
                        proc.kill()

        reader = threading.Thread(target=user, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=TIMEOUT)  # stdout stays empty: the pipe cannot fill up
        finally:
            if proc.poll() is None:
                proc.kill()
        stdout = proc.stdout.read()
        reader.join(TIMEOUT)
        if failures:
            raise failures[0]
        run = Run(argv, proc.returncode, stdout, "".join(stderr))
        self.runs.append(run)
        assert "\x1b[" not in run.output, run.output
        return run

    def record(self, url: str) -> ServerRecord | None:
        """What the store holds for ``url``, read by this process with the same key."""
        return asyncio.run(TokenStore.default(self.home).get(url))

    def all_output(self) -> str:
        return "".join(run.output for run in self.runs)

    def use_keyring(self, service: SecretService, monkeypatch: pytest.MonkeyPatch) -> None:
        """From now on the CLI (and this process) see ``service`` as the system keyring."""
        service.use(monkeypatch)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = service.address


def one_redirect(authorization_url: str) -> str:
    response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CLI]:
    home = tmp_path / "store"
    config = tmp_path / "config"
    for name in _STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    # This process reads the same store as the CLI: same folder, same key file.
    monkeypatch.setenv("MCP_CLIENT_AUTH_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    keys.forget_keys()
    yield CLI(home, config, dict(os.environ), [])
    keys.forget_keys()


@pytest.fixture
def demo() -> Iterator[DemoServers]:
    servers = start_demo_servers()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def start_demo() -> Iterator[Callable[..., DemoServers]]:
    """Factory for more (or differently configured) demo server pairs."""
    started: list[DemoServers] = []

    def start(**options: object) -> DemoServers:
        servers = start_demo_servers(**options)  # type: ignore[arg-type]
        started.append(servers)
        return servers

    yield start
    for servers in started:
        servers.stop()


@pytest.fixture
def run_cli(cli: CLI) -> Iterator[InProcess]:
    """The tool run in this process (``tests/cli/inprocess.py``), with ``cli``'s store."""
    from .inprocess import InProcess

    yield InProcess(cli)
