"""What ``mcp-client-auth proxy`` costs a desktop host: per request, at start-up, in memory.

    .venv/bin/python benchmarks/bench_proxy.py [--quick]

Prints one table of ratios, each against its floor measured side by side in the same run
(interleaved, medians), with the goal beside it:

1. per request: a JSON-RPC request written to the proxy's stdin and its answer read from its
   stdout, against the same client POSTing it to the server itself with the token in a static
   header (one request of each kind in turn, order alternating); beside it, the stdio round
   trip alone (a process that answers each line at once: the floor of any relay), and the
   same request through the legacy HTTP+SSE transport against a client that POSTs to the
   endpoint and reads the answer from its own event stream;
2. start-up to the first answered request, with a stored token: the proxy process against a
   process that imports httpx and sends the same request with a static header;
3. the idle proxy's resident memory, and mcp-remote's per request and idle where Node and the
   package are at hand (``$MCP_REMOTE``, else ``mcp-remote`` on PATH);
4. why a raw relay and not the mcp SDK's transports: the import time and memory of the
   proxy's modules against those of ``mcp.client.streamable_http`` and ``mcp.client.stdio``.

The servers are tiny keep-alive ``http.server``s on 127.0.0.1 that check the bearer token and
answer at once (JSON, or an event on the stream for the legacy one). The store is a temp
folder with one valid token per server (``MCP_CLIENT_AUTH_KEY`` holds its key: no keyring),
removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
PROXY = [PY, "-m", "mcp_client_auth", "proxy"]
TOKEN = "eyJ" + "a" * 597  # a JWT-sized access token
KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
CLIENT = {"name": "bench", "version": "1"}
REQUEST = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "x" * 200}},
}


class McpHandler(BaseHTTPRequestHandler):
    """A JSON-RPC endpoint that answers every request at once (the floor of any server)."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()  # headers and body are two writes: no Nagle wait between them
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            self._send(401, b"", {"www-authenticate": "Bearer"})
            return
        message = json.loads(body)
        if "id" not in message:
            self._send(202, b"")
            return
        self._send(200, answer_to(message), {"content-type": "application/json"})

    def do_GET(self) -> None:
        self._send(405, b"")

    def do_DELETE(self) -> None:
        self._send(405, b"")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def answer_to(message: dict[str, Any]) -> bytes:
    """The JSON-RPC answer both servers give: the handshake's, or one tool result."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": "ok"}]}
    if message.get("method") == "initialize":
        result = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench", "version": "1"},
        }
    return json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()


class LegacySseHandler(McpHandler):
    """The legacy HTTP+SSE transport at its floor: each ``GET /mcp`` is an event stream
    whose first event names its own ``/mcp/messages?session=N``; a POST there is accepted
    (202) and its answer goes out on that stream at once."""

    streams: ClassVar[dict[str, Any]] = {}  # session -> the stream's file, written under the lock
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            self._send(401, b"", {"www-authenticate": "Bearer"})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        with self.lock:
            session = str(len(self.streams))
            self.wfile.write(f"event: endpoint\ndata: /mcp/messages?session={session}\n\n".encode())
            self.wfile.flush()
            self.streams[session] = self.wfile
        self.close_connection = True
        try:
            while self.rfile.read(1):  # held open until the client goes
                pass
        except OSError:
            pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            self._send(401, b"", {"www-authenticate": "Bearer"})
            return
        self._send(202, b"")
        message = json.loads(body)
        if "id" in message:
            with self.lock:
                stream = self.streams[self.path.rsplit("=", 1)[1]]
                stream.write(b"event: message\ndata: " + answer_to(message) + b"\n\n")
                stream.flush()


def fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


def seed_store(folder: Path, url: str) -> None:
    """One valid token for ``url`` in the default store at ``folder``."""
    sys.path.insert(0, str(HERE))
    import asyncio

    from _child import record

    from mcp_client_auth import TokenStore
    from mcp_client_auth.metadata import canonical_resource_url

    os.environ["MCP_CLIENT_AUTH_KEY"] = KEY
    store = TokenStore.default(str(folder))
    base = url.rsplit("/", 1)[0]
    stored = record(canonical_resource_url(url), f"{base}/token", TOKEN, time.time() + 86400)
    asyncio.run(store.put(stored))  # type: ignore[arg-type]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CLIENT_AUTH")}
    env["MCP_CLIENT_AUTH_KEY"] = KEY
    env["PYTHONPATH"] = str(ROOT)
    return env


class Proxy:
    """A running proxy (ours, or ``argv``'s), driven as a host drives it."""

    def __init__(
        self, url: str, store: Path, argv: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            list(argv) or [*PROXY, url, "--store", str(store)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env or child_env(),
        )

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def handshake(proxy: Proxy) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT},
    }
    assert "result" in proxy.ask(init)


HEADERS = {"authorization": f"Bearer {TOKEN}", "accept": "application/json, text/event-stream"}
Ask = Callable[[dict[str, Any]], dict[str, Any]]


@contextlib.contextmanager
def streamable_client(url: str) -> Iterator[Ask]:
    """The floor: the same POST with the token as a static header, the answer as JSON."""
    import httpx

    with httpx.Client(headers=HEADERS) as client:
        yield lambda message: dict(client.post(url, json=message).json())


@contextlib.contextmanager
def legacy_client(url: str) -> Iterator[Ask]:
    """The legacy floor: the client's own event stream open, each message POSTed to its
    endpoint, the answer read from the stream."""
    import httpx

    with httpx.Client(headers=HEADERS) as client, client.stream("GET", url) as stream:
        lines = stream.iter_lines()

        def event() -> str:
            data = []
            for line in lines:
                if not line:
                    return "\n".join(data)
                if line.startswith("data:"):
                    data.append(line[5:].strip())
            raise EOFError("the event stream ended")

        endpoint = url.rsplit("/", 1)[0] + event().removeprefix("/mcp")

        def ask(message: dict[str, Any]) -> dict[str, Any]:
            assert client.post(endpoint, json=message).status_code == 202
            return dict(json.loads(event()))

        yield ask


def per_request(
    url: str,
    store: Path,
    count: int,
    argv: Sequence[str] = (),
    env: Any = None,
    direct: Callable[[str], contextlib.AbstractContextManager[Ask]] = streamable_client,
) -> tuple[float, float]:
    """Median seconds per request: (direct with a static header, through the proxy)."""
    proxy = Proxy(url, store, argv, env)
    try:
        handshake(proxy)
        direct_times: list[float] = []
        relayed: list[float] = []
        with direct(url) as ask_directly:
            for i in range(count + 50):
                message = {**REQUEST, "id": i + 1}
                order = (0, 1) if i % 2 else (1, 0)
                for which in order:
                    start = time.perf_counter()
                    if which == 0:
                        assert ask_directly(message)["id"] == i + 1
                    else:
                        assert proxy.ask(message)["id"] == i + 1
                    elapsed = time.perf_counter() - start
                    if i >= 50:  # the first ones warm both paths up
                        (direct_times if which == 0 else relayed).append(elapsed)
    finally:
        proxy.close()
    return statistics.median(direct_times), statistics.median(relayed)


ECHO = """
import json, sys
for line in sys.stdin.buffer:
    answer = {"jsonrpc": "2.0", "id": json.loads(line)["id"], "result": {}}
    sys.stdout.buffer.write(json.dumps(answer).encode() + b"\\n")
    sys.stdout.buffer.flush()
"""


STATIC = """
import json, sys, httpx
message = json.loads(sys.argv[2])
r = httpx.post(sys.argv[1], json=message, headers={"authorization": "Bearer " + sys.argv[3]})
print(json.dumps(r.json()))
"""


def start_up(url: str, store: Path, rounds: int) -> tuple[float, float]:
    """Median seconds from spawn to the first answer: (static-header process, proxy)."""
    static: list[float] = []
    proxied: list[float] = []
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT},
        }
    )
    for i in range(rounds):
        for which in (0, 1) if i % 2 else (1, 0):
            start = time.perf_counter()
            if which == 0:
                out = subprocess.run(
                    [PY, "-c", STATIC, url, init, TOKEN],
                    capture_output=True,
                    env=child_env(),
                    check=True,
                ).stdout
                assert b'"result"' in out
                static.append(time.perf_counter() - start)
            else:
                proxy = Proxy(url, store)
                assert proxy.process.stdin is not None and proxy.process.stdout is not None
                proxy.process.stdin.write(init.encode() + b"\n")
                proxy.process.stdin.flush()
                assert b'"result"' in proxy.process.stdout.readline()
                proxied.append(time.perf_counter() - start)
                proxy.close()
    return statistics.median(static), statistics.median(proxied)


def idle_memory(url: str, store: Path, argv: Sequence[str] = (), env: Any = None) -> int:
    proxy = Proxy(url, store, argv, env)
    try:
        handshake(proxy)
        for i in range(20):
            proxy.ask({**REQUEST, "id": i + 1})
        time.sleep(1.0)
        return proxy.rss_kib()
    finally:
        proxy.close()


PROBE = """
import resource, sys, time
t = time.perf_counter()
for name in sys.argv[1:]:
    __import__(name)
elapsed = time.perf_counter() - t
with open("/proc/self/status") as f:
    rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
print(elapsed, rss)
"""


def import_cost(modules: Sequence[str], rounds: int) -> tuple[float, int]:
    times, sizes = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [PY, "-c", PROBE, *modules], capture_output=True, text=True, env=child_env(), check=True
        ).stdout.split()
        times.append(float(out[0]))
        sizes.append(int(out[1]))
    return statistics.median(times), int(statistics.median(sizes))


def mcp_remote_argv(url: str) -> list[str] | None:
    """mcp-remote with the token as a static header (no OAuth: only its relay is measured):
    ``$MCP_REMOTE`` (its executable), else ``mcp-remote`` on PATH."""
    found = os.environ.get("MCP_REMOTE") or shutil.which("mcp-remote")
    if not found or not shutil.which("node"):
        return None
    return [found, url, "--header", f"Authorization:Bearer {TOKEN}", "--allow-http"]


def mcp_remote_memory(url: str, store: Path, home: Path) -> str:
    argv = mcp_remote_argv(url)
    if argv is None:
        return "mcp-remote: n/a (set MCP_REMOTE, or put mcp-remote on PATH)"
    env = {**child_env(), "HOME": str(home)}
    return f"mcp-remote: {idle_memory(url, store, argv, env) / 1024:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    requests, rounds = (200, 5) if args.quick else (1000, 15)

    server = ThreadingHTTPServer(("127.0.0.1", 0), McpHandler)
    legacy = ThreadingHTTPServer(("127.0.0.1", 0), LegacySseHandler)
    for each in (server, legacy):
        threading.Thread(target=each.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/mcp"
    folder = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    store = folder / "store"
    rows: list[tuple[str, str, str, str, str, str]] = []
    try:
        seed_store(store, url)
        direct, relayed = per_request(url, store, requests)
        ratio, added = relayed / direct, relayed - direct
        rows.append(
            (
                "per request (median)",
                fmt(relayed),
                fmt(direct),
                f"{ratio:.2f}x, +{fmt(added)}",
                "<= 1.10x, <= 1 ms",
                "ok" if ratio <= 1.10 and added <= 1e-3 else "MISSED",
            )
        )
        direct, echoed = per_request(url, store, requests, [PY, "-c", ECHO])
        rows.append(
            (
                "stdio round trip alone (a relay that answers at once)",
                fmt(echoed),
                fmt(direct),
                f"{1 + echoed / direct:.2f}x: any relay's floor",
                "",
                "info",
            )
        )
        legacy_url = f"http://127.0.0.1:{legacy.server_address[1]}/mcp"
        seed_store(store, legacy_url)
        sse_only = [*PROXY, legacy_url, "--store", str(store), "--transport", "sse-only"]
        direct, relayed = per_request(legacy_url, store, requests, sse_only, direct=legacy_client)
        rows.append(
            (
                "per request, legacy HTTP+SSE (median)",
                fmt(relayed),
                fmt(direct),
                f"{relayed / direct:.2f}x, +{fmt(relayed - direct)}",
                "",
                "info",
            )
        )
        static, proxied = start_up(url, store, rounds)
        ratio = proxied / static
        rows.append(
            (
                "start-up to first answer",
                fmt(proxied),
                fmt(static),
                f"{ratio:.2f}x",
                "<= 1.3x",
                "ok" if ratio <= 1.3 else "MISSED",
            )
        )
        rss = idle_memory(url, store)
        memory = f"{rss / 1024:.1f} MiB"
        other = mcp_remote_memory(url, store, folder / "home")
        remote = mcp_remote_argv(url)
        if remote is not None:
            env = {**child_env(), "HOME": str(folder / "home")}
            direct, relayed = per_request(url, store, requests // 2, remote, env)
            rows.append(
                (
                    "mcp-remote per request (median)",
                    fmt(relayed),
                    fmt(direct),
                    f"{relayed / direct:.2f}x, +{fmt(relayed - direct)}",
                    "",
                    "info",
                )
            )
        rows.append(("idle proxy RSS", memory, other, "", "", "info"))
        ours_t, ours_m = import_cost(["mcp_client_auth.proxy.session"], rounds)
        sdk_t, sdk_m = import_cost(
            ["mcp_client_auth", "mcp.client.streamable_http", "mcp.client.stdio"], rounds
        )
        rows.append(
            (
                "import: raw relay vs mcp SDK transports",
                f"{fmt(ours_t)}, {ours_m / 1024:.0f} MiB",
                f"{fmt(sdk_t)}, {sdk_m / 1024:.0f} MiB",
                f"{ours_t / sdk_t:.2f}x time, {ours_m / sdk_m:.2f}x peak RSS",
                "lower",
                "info",
            )
        )
    finally:
        server.shutdown()
        legacy.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    header = ("figure", "proxy", "floor / other", "ratio", "goal", "verdict")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(6)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    load = os.getloadavg()[0]
    cores = os.cpu_count()
    print(f"\n{requests} requests, {rounds} start-ups; load average {load:.1f} on {cores} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
