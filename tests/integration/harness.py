"""What the client and example tests start and run: the real servers, the driver, the mcp 1.x
environment, Redis. Plain functions; ``conftest.py`` beside this file wraps them as fixtures.

- :func:`start_stack`: the REAL authorization server (oidc-provider, ``tests/realas/server.mjs``,
  started the way ``tests/conftest.py`` starts it) and the integration MCP server
  (``mcp_server.py``, the ``mcp`` SDK's), wired to each other on free loopback ports.
- :func:`drive`: one run of one real client (``mcp_client_driver.py``) in a new process.
- :func:`mcp_v1_python`: the python of a virtual environment with the latest mcp 1.x and this
  project (editable): ``$MCP_V1_PYTHON`` when set (``.ci/run`` makes one), else a cached one,
  made on first use.
- :func:`start_redis`: a private ``redis-server`` on 127.0.0.1, no persistence.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers.processes import (
    LOOPBACK,
    ROOT,
    Server,
    as_metadata,
    listening_socket,
    prm_url,
    python_path,
    start_auth_server,
    start_module_server,
)

from .mcp_server import SCOPES

AS_LABEL = "authorization server (tests/realas/server.mjs)"


@dataclass
class Stack:
    """The authorization server and the MCP server that trusts it."""

    issuer: str  # http://127.0.0.1:<port>
    url: str  # the MCP endpoint: http://127.0.0.1:<port>/mcp, the protected resource
    auth_server: Server
    mcp_server: Server
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    mcp_socket: socket.socket | None = None
    server_args: tuple[str, ...] = ()
    mcp_restarts: int = 0

    @property
    def prm_url(self) -> str:
        parts = urlsplit(self.url)
        return prm_url(f"{parts.scheme}://{parts.netloc}", parts.path)

    def as_metadata(self) -> dict[str, Any]:
        return as_metadata(self.issuer)

    def events(self) -> list[dict[str, Any]]:
        """The authorization server's grants, registrations and revocations (AS_LOG_EVENTS)."""
        return self.auth_server.events()

    def grants(self, client_id: str) -> list[str]:
        """``grant_type`` of each token request of ``client_id``, ``!error`` for a refused one."""
        found = []
        for e in self.events():
            if e.get("client_id") != client_id:
                continue
            if e["event"] == "grant.success":
                found.append(str(e["grant_type"]))
            elif e["event"] == "grant.error":
                found.append(f"{e['grant_type']}!{e.get('error')}")
        return found

    def revoke(self, token: str, client_id: str, hint: str = "refresh_token") -> None:
        """RFC 7009 revocation at the authorization server, as the public client itself."""
        response = httpx.post(
            self.as_metadata()["revocation_endpoint"],
            data={"token": token, "token_type_hint": hint, "client_id": client_id},
            timeout=5,
        )
        assert response.status_code == 200, response.text

    def restart_auth_server(self) -> None:
        """Stop the authorization server and start a new one on the same port: it has forgotten
        every client, grant and token, and signs with a new key."""
        self.auth_server.stop()
        self.restarts += 1
        port = urlsplit(self.issuer).port
        self.auth_server, _ = start_auth_server(
            self.workdir, {**self.settings, "AS_PORT": str(port)}, f"as-{self.restarts}", AS_LABEL
        )

    def restart_mcp_server(self) -> None:
        """Stop the MCP server and start a new one on the same socket: it has forgotten every
        session."""
        assert self.mcp_socket is not None
        self.mcp_server.stop()
        self.mcp_restarts += 1
        self.mcp_server = _start_mcp_server(
            self.workdir,
            self.issuer,
            self.mcp_socket,
            self.server_args,
            f"mcp-{self.mcp_restarts}",
        )

    def stop(self) -> None:
        self.mcp_server.stop()
        self.auth_server.stop()
        if self.mcp_socket is not None:
            self.mcp_socket.close()


def start_stack(workdir: Path, *, server_args: Sequence[str] = (), **knobs: str) -> Stack:
    """Start both servers. ``knobs``: the authorization server's settings (``AT_TTL``...);
    ``server_args``: more options of the MCP server (``--stateless``, ``--json-response``)."""
    # The MCP server's socket, bound now and inherited: its port cannot be taken meanwhile,
    # and it stays open here so that the server can be restarted on it (connections made in
    # between wait in its backlog).
    mcp_socket = listening_socket()
    try:
        return _start_stack(workdir, mcp_socket, knobs, tuple(server_args))
    except BaseException:
        mcp_socket.close()
        raise


def _start_stack(
    workdir: Path, mcp_socket: socket.socket, knobs: dict[str, str], server_args: tuple[str, ...]
) -> Stack:
    mcp_port = int(mcp_socket.getsockname()[1])
    url = f"http://{LOOPBACK}:{mcp_port}/mcp"
    settings = {
        "AS_HOST": LOOPBACK,
        "AS_PORT": "0",
        "INTERACTION_MODE": "auto",
        "MCP_RESOURCE": url,
        "MCP_SCOPES": " ".join(SCOPES),
        "AS_LOG_EVENTS": "1",
        **knobs,
    }
    auth_server, port = start_auth_server(workdir, settings, "as", AS_LABEL)
    issuer = f"http://{LOOPBACK}:{port}{settings.get('ISSUER_PATH', '')}"
    try:
        mcp_server = _start_mcp_server(workdir, issuer, mcp_socket, server_args, "mcp")
        stack = Stack(issuer, url, auth_server, mcp_server, workdir, settings)
        stack.mcp_socket, stack.server_args = mcp_socket, server_args
    except BaseException:
        auth_server.stop()
        raise
    return stack


def _start_mcp_server(
    workdir: Path, issuer: str, mcp_socket: socket.socket, server_args: tuple[str, ...], name: str
) -> Server:
    args = ["--issuer", issuer, "--log-requests", *server_args]
    return start_module_server(
        "MCP server (tests/integration/mcp_server.py)",
        "tests.integration.mcp_server",
        args,
        mcp_socket,
        workdir,
        name,
    )


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Run:
    """One ``call`` step of the driver (see ``mcp_client_driver.py``)."""

    client: str
    step: str
    results: list[dict[str, Any]] | None
    logins: int
    requests: list[dict[str, Any]]
    scope: str | None
    expires_at: float | None
    started: float
    finished: float
    error: dict[str, Any] | None
    stderr: str

    @classmethod
    def parse(cls, client: str, step: str, data: dict[str, Any], stderr: str) -> Run:
        return cls(
            client=client,
            step=step,
            results=data.get("results"),
            logins=data["logins"],
            requests=data["requests"],
            scope=data["scope"],
            expires_at=data["expires_at"],
            started=data["started"],
            finished=data["finished"],
            error=data.get("error"),
            stderr=stderr,
        )

    def texts(self) -> list[str]:
        assert self.error is None, self.explain()
        assert self.results is not None
        return [r["text"] for r in self.results]

    def sent(self, prefix: str) -> list[tuple[str, str, int | None]]:
        """(method, path and query, status) of the requests to URLs starting with ``prefix``."""
        found = []
        for r in self.requests:
            if r["url"].startswith(prefix):
                parts = urlsplit(r["url"])
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                found.append((r["method"], path, r["status"]))
        return found

    def auth_errors(self) -> list[dict[str, str]]:
        return list((self.error or {}).get("auth_errors", []))

    def explain(self) -> str:
        """Everything about the step, for an assertion message."""
        lines = [f"{self.client} {self.step}: logins={self.logins} scope={self.scope!r}"]
        lines += [f"  {r['method']} {r['url'][:120]} -> {r['status']}" for r in self.requests]
        if self.error:
            lines.append(f"error {self.error['type']}: {self.error['message'][:500]}")
            lines.append(self.error["traceback"])
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr[-3000:])
        return "\n".join(lines)


@dataclass
class Drive:
    """What one driver process reported: its call steps by name, and what stopped it."""

    client: str
    steps: dict[str, Run]
    timeline: list[tuple[str, float]]
    error: dict[str, Any] | None
    stderr: str

    def __getitem__(self, step: str) -> Run:
        if step not in self.steps:
            detail = self.error["traceback"] if self.error else self.stderr[-3000:]
            raise AssertionError(f"the {self.client} driver stopped before {step!r}:\n{detail}")
        return self.steps[step]


def driver_env(key: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MCP_CLIENT_AUTH_KEY": key,  # the store's key: no keyring, no key file
        "PYTHONPATH": python_path(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MCP_CLIENT_AUTH_HOME", None)
    return env


def call(
    name: str, store: str = "main", login: str = "auto", *tools: str, must_work: bool = False
) -> dict[str, Any]:
    """A ``call`` step of a plan."""
    return {
        "call": name,
        "store": store,
        "login": login,
        "tools": list(tools),
        "must_work": must_work,
    }


class DriverProcess:
    """A driver process (a test's client in a process of its own), started now; let go
    (``go``, which ends a ``wait_for_go`` step) and read (``output``) later."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def go(self) -> None:
        """End a ``wait_for_go`` step."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def output(self, timeout: float = 150.0) -> tuple[dict[str, Any], str]:
        """The JSON line the driver printed last, and its standard error."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            raise AssertionError(
                f"the {self.name} driver took over {timeout} s:\n{stdout}\n{stderr}"
            ) from None
        if self.process.returncode != 0 or not stdout.strip():
            raise AssertionError(
                f"the {self.name} driver failed (exit {self.process.returncode}):\n"
                f"{stdout}\n{stderr}"
            )
        return json.loads(stdout.strip().splitlines()[-1]), stderr

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


class Driver(DriverProcess):
    """A driver process of ``mcp_client_driver.py``."""

    def __init__(
        self,
        python: str,
        client: str,
        url: str,
        stores: Path,
        plan: Sequence[dict[str, Any]],
        *,
        key: str,
        leeway: float = 2.0,
        client_id: str | None = None,
        dpop: str = "default",
    ) -> None:
        argv = [python, "-m", "tests.integration.mcp_client_driver", client, url]
        argv += ["--stores", str(stores), "--plan", json.dumps(list(plan))]
        argv += ["--leeway", str(leeway), "--dpop", dpop]
        if client_id is not None:
            argv += ["--client-id", client_id]
        self.client = client
        super().__init__(argv, driver_env(key), client)

    def result(self, timeout: float = 150.0) -> Drive:
        data, stderr = self.output(timeout)
        return Drive(
            client=self.client,
            steps={n: Run.parse(self.client, n, r, stderr) for n, r in data["steps"].items()},
            timeline=[(str(n), float(t)) for n, t in data["timeline"]],
            error=data.get("error"),
            stderr=stderr,
        )


def drive(
    python: str,
    client: str,
    url: str,
    stores: Path,
    plan: Sequence[dict[str, Any]],
    *,
    key: str,
    leeway: float = 2.0,
    client_id: str | None = None,
    dpop: str = "default",
    timeout: float = 150.0,
) -> Drive:
    """Run ``plan`` with ``client`` in a new process (``python``), stores under ``stores``."""
    driver = Driver(
        python, client, url, stores, plan, key=key, leeway=leeway, client_id=client_id, dpop=dpop
    )
    return driver.result(timeout)


def side_by_side(*runs: Callable[[], None]) -> None:
    """Run each function in a thread of its own and wait for all: journeys that each wait
    for a token to expire pay that wait once."""
    threads = [threading.Thread(target=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_until(deadline: float) -> None:
    """Sleep until the wall clock passes ``deadline`` (token expiry is wall-clock time)."""
    delay = deadline - time.time()
    if delay > 0:
        time.sleep(delay)


# -- mcp 1.x, in its own environment ---------------------------------------------------------

V1_CHECK = (
    "import importlib.metadata as m, mcp_client_auth, pathlib, sys; "
    "v = m.version('mcp'); "
    "print(v, pathlib.Path(mcp_client_auth.__file__).resolve().parents[1]); "
    "sys.exit(0 if v.startswith('1.') else 1)"
)


def _v1_state(python: Path) -> tuple[bool, bool]:
    """(mcp 1.x importable with mcp_client_auth, mcp_client_auth is this checkout's)."""
    if not python.exists():
        return False, False
    proc = subprocess.run(
        [str(python), "-c", V1_CHECK], capture_output=True, text=True, timeout=60, cwd="/"
    )
    if proc.returncode != 0:
        return False, False
    return True, Path(proc.stdout.split()[-1]) == ROOT


def mcp_v1_python() -> str:
    """The python of an environment with mcp 1.x and this checkout of mcp-client-auth."""
    given = os.environ.get("MCP_V1_PYTHON")
    if given:
        works, ours = _v1_state(Path(given))
        if not (works and ours):
            pytest.fail(
                f"MCP_V1_PYTHON={given} is not an environment with mcp 1.x and this checkout "
                f"({ROOT}) of mcp-client-auth installed: `pip install 'mcp<2' -e {ROOT}`"
            )
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "mcp-client-auth-tests" / "venv-mcp1"
    python = venv / "bin" / "python"
    works, ours = _v1_state(python)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not works:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([*pip, "mcp<2", "-e", str(ROOT)], check=True, timeout=600)
    elif not ours:  # made for another checkout: point it at this one
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, timeout=300)
    works, ours = _v1_state(python)
    assert works and ours, f"could not make the mcp 1.x environment in {venv}"
    return str(python)


# -- Redis -----------------------------------------------------------------------------------


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server on 127.0.0.1 (no persistence); the process and its URL (started
    as the store tests start theirs: a new port when the chosen one was taken meanwhile)."""
    from tests.store.redis_server import start_redis_server

    server = start_redis_server(workdir)
    return server.process, server.url
