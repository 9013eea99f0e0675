"""Start a test server in a process of its own, on 127.0.0.1, and wait until it answers.

Every fixture that starts a process (the real authorization server, its protected resource, the
integration MCP server, the interop servers) starts it here: its output goes to a log file the
failure message quotes, its port is held by a socket the test bound first and handed down (or
written by the server to a file when it binds its own), and a server that dies during start-up
fails the test at once with its log instead of a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
REALAS_DIR = ROOT / "tests" / "realas"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 90.0  # generous: node and uvicorn start slowly on a busy machine


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def listening_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1 and listening, for a server to serve on
    (a process inherits it with ``pass_fds``): the port is held from the moment it is chosen, so
    nothing else on the machine can take it before the server starts (as with a port chosen,
    freed, then bound)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
        sock.listen(128)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def node() -> str:
    """The Node.js that runs the real authorization server, with its packages installed."""
    found = os.environ.get("AS_NODE") or shutil.which("node")
    if not found:
        pytest.fail("the real authorization server needs Node.js (`node` on PATH, or AS_NODE)")
    if not (REALAS_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            f"the real authorization server's packages are not installed in "
            f"{REALAS_DIR / 'node_modules'}: run `(cd tests/realas && npm ci)` (bash .ci/run does)"
        )
    return found


@dataclass
class Server:
    """A server process started by a fixture, with its combined output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines the server printed (the AS with ``AS_LOG_EVENTS=1``)."""
        events = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def fail_if_dead(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.name} exited with status {self.process.returncode}:\n{self.log()[-3000:]}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def spawn(
    name: str,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    pass_fds: tuple[int, ...] = (),
) -> Server:
    """Start ``argv``; its standard output and error go to ``log_path``."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
    return Server(name, process, log_path)


def wait_for(server: Server, ready: Callable[[], bool]) -> None:
    """Until ``ready()``; fails the test (and stops the server) when it dies or never is."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        server.fail_if_dead()
        if ready():
            return
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"{server.name} did not start within {STARTUP_TIMEOUT} s:\n{server.log()[-3000:]}")


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def prm_url(base: str, path: str = "/mcp") -> str:
    """The RFC 9728 metadata URL of the resource at ``base`` + ``path`` (path-inserted)."""
    return f"{base}/.well-known/oauth-protected-resource{path}"


def as_metadata(issuer: str) -> dict[str, Any]:
    """The RFC 8414 metadata of the authorization server at ``issuer``."""
    response = httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=5)
    response.raise_for_status()
    return dict(response.json())


def python_path() -> str:
    """``PYTHONPATH`` for a child that imports ``tests.*`` modules from this checkout."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def start_auth_server(
    workdir: Path, settings: dict[str, str], name: str, label: str
) -> tuple[Server, str]:
    """The real authorization server (``tests/realas/server.mjs``) with ``settings`` as its
    environment; the process and the port it bound (``AS_PORT``, ``0`` for any), which it
    writes to a file once it listens."""
    port_file = workdir / f"{name}.port"
    env = {**os.environ, **settings, "AS_PORT_FILE": str(port_file)}
    server = spawn(label, [node(), "server.mjs"], env, REALAS_DIR, workdir / f"{name}.log")
    wait_for(server, lambda: port_file.exists() and port_file.read_text().strip() != "")
    return server, port_file.read_text().strip()


def start_module_server(
    label: str,
    module: str,
    args: Sequence[str],
    sock: socket.socket,
    workdir: Path,
    name: str,
) -> Server:
    """``python -m <module> <args> --port N --fd FD`` serving on ``sock`` (from
    :func:`listening_socket`), started once its RFC 9728 metadata for ``/mcp`` answers."""
    port = int(sock.getsockname()[1])
    argv = [sys.executable, "-m", module, *args, "--port", str(port), "--fd", str(sock.fileno())]
    server = spawn(
        label,
        argv,
        {**os.environ, "PYTHONPATH": python_path()},
        ROOT,
        workdir / f"{name}.log",
        pass_fds=(sock.fileno(),),
    )
    wait_for(server, lambda: http_ok(prm_url(f"http://{LOOPBACK}:{port}")))
    return server
