"""A desktop host's view of ``mcp-client-auth proxy``: the proxy as a subprocess, spoken to
over its stdin and stdout, with its own store, the tests' store key and a stand-in browser.

The browser is a small script named by ``$BROWSER`` (the user's choice, which the login
honours): it follows the authorization server's redirects (automatic consent) to the proxy's
loopback listener, as a browser does.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import ROOT, driver_env

FAKE_BROWSER = """
import os, sys, time, urllib.request
gate = os.environ.get("FAKE_BROWSER_GATE")
if gate:  # a test holds the login until it is ready
    deadline = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor()
)
opener.open(sys.argv[1], timeout=60).read()
"""
ANSWER_WAIT = 90.0  # generous: a login through the real authorization server on a busy machine


def proxy_command() -> str:
    found = shutil.which("mcp-client-auth", path=str(Path(sys.executable).parent))
    assert found, "the mcp-client-auth console script is not installed next to this python"
    return found


@dataclass
class HostSetup:
    """What a host configuration gives the proxy: the command, its arguments, its env."""

    store: Path
    key: str
    browser: str | None  # the $BROWSER command; None: one that cannot open anything
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = driver_env(self.key)
        env.pop("BROWSER", None)
        env["BROWSER"] = self.browser or "false %s"
        env["PYTHONPATH"] = str(ROOT)
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        return {**env, **self.extra_env}

    def args(self, url: str, *extra: str) -> list[str]:
        return ["proxy", url, "--store", str(self.store), *extra]


def checked_tools(setup: HostSetup, url: str, *extra: str) -> set[str]:
    """``mcp-client-auth proxy URL --check``: the tool names it printed (it must succeed)."""
    run = subprocess.run(
        [proxy_command(), *setup.args(url, "--check", *extra)],
        env=setup.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


async def fastmcp_host_session(
    setup: HostSetup, url: str, text: str, *extra: str
) -> tuple[list[str], str]:
    """FastMCP's stdio client as the host: the tool names, and what ``echo`` sent back."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(
        proxy_command(), setup.args(url, *extra), env=setup.env(), keep_alive=False
    )
    async with Client(transport) as client:
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"text": text})
        echoed = "".join(getattr(c, "text", "") for c in result.content)
        return sorted(t.name for t in tools), echoed


V1_HOST = """
import asyncio, json, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

command, args, env = json.loads(sys.argv[1])

async def main():
    params = StdioServerParameters(command=command, args=args, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("echo", {"text": "from mcp 1.x"})
            print(json.dumps({
                "version": init.protocolVersion,
                "tools": [t.name for t in tools.tools],
                "text": result.content[0].text,
            }))

asyncio.run(main())
"""


def v1_host_session(python: str, setup: HostSetup, url: str, *extra: str) -> dict[str, Any]:
    """The mcp 1.x stdio client (``python``: its own environment) as the host: the version
    it negotiated, the tool names, and what ``echo`` sent back."""
    spec = json.dumps([proxy_command(), setup.args(url, *extra), setup.env()])
    run = subprocess.run(
        [python, "-c", V1_HOST, spec], capture_output=True, text=True, timeout=180, cwd="/"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return seen


def fake_browser(folder: Path) -> str:
    script = folder / "fake_browser.py"
    script.write_text(FAKE_BROWSER)
    return f"{sys.executable} {script} %s"


class RawHost:
    """The proxy driven line by line, as the simplest host would."""

    def __init__(self, setup: HostSetup, url: str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [proxy_command(), *setup.args(url, *extra)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=setup.env(),
            cwd=setup.store.parent,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _pump_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def send_line(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message).encode())

    def receive(self, timeout: float = ANSWER_WAIT) -> Any:
        """The next line of stdout, which must be one JSON-RPC message."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer in {timeout} s; stderr:\n{self.log()}") from None
        assert line, f"the proxy closed stdout; stderr:\n{self.log()}"
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        return json.loads(line)

    def answer(self, request_id: Any) -> dict[str, Any]:
        """The answer to ``request_id`` (messages from the server on the way are skipped)."""
        while True:
            message = self.receive()
            if isinstance(message, dict) and message.get("id") == request_id:
                return message

    def request(self, request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.answer(request_id)

    def handshake(self) -> dict[str, Any]:
        answer = self.request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw host", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def log(self) -> str:
        return b"".join(self.stderr).decode(errors="replace")[-4000:]

    def close(self) -> int:
        """Close stdin as a host does on exit; the proxy must end by itself."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the proxy did not exit after stdin closed:\n{self.log()}"
            ) from None
