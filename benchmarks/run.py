"""The cost of auth: per request, per reconnect, per CLI call, under concurrency, at scale.

    .venv/bin/python benchmarks/run.py [--quick] [--only 1,2,...] [--dir FOLDER]

Prints one table. Every figure is a ratio of two things measured side by side in this run
(interleaved, medians of many repeats): these machines are shared and noisy, so an absolute
time alone means little. The goal of each figure is printed beside it (issue 8):

1. per request, valid token, over MockTransport: no auth / static header (the floor) / this
   provider / the mcp SDK's provider, in httpx2.AsyncClient and httpx.Client;
2. reconnect: a new process with a stored token against a local resource server;
3. ``mcp-client-auth token URL`` against ``python -c "import httpx"``;
4. 200 concurrent requests, and 8 processes, on an expired token;
5. first login with no cache, against the mcp SDK's provider on the same servers;
6. 1,000 stored servers: ``status`` as a process, one lookup; against FileTree + Fernet;
7. peak RSS with and without the provider and its store.

Everything binds 127.0.0.1 only; every store lives in a temp folder with its own HOME and
XDG folders (no D-Bus, so the key goes to a key file), removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD = str(HERE / "_child.py")
PY = sys.executable
BIN = Path(PY).parent
TOKEN = "eyJ" + "a" * 597  # a JWT-sized access token (600 characters)
# the store key of the Redis comparison (a fixed Fernet key: only benchmark data uses it)
BENCH_STORE_KEY = base64.urlsafe_b64encode(b"mcp-client-auth benchmark key 32").decode()

warnings.simplefilter("ignore")  # beartype and deprecation chatter from dependencies


# -- the table ------------------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    figure: str
    ours: str
    other: str
    ratio: str
    goal: str
    verdict: str  # "ok", "MISSED", "info", "n/a"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))

    def note(self, text: str) -> None:
        self.notes.append(text)


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def ok(condition: bool) -> str:
    return "ok" if condition else "MISSED"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# -- isolated environments for child processes ----------------------------------------------------

_STORE_ENV = (
    "MCP_CLIENT_AUTH_KEY",
    "MCP_CLIENT_AUTH_HOME",
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
)


@dataclass
class Sandbox:
    """A temp folder with its own HOME and XDG folders: no keyring, key file inside.

    It also holds the code under test: a snapshot of ``mcp_client_auth`` with its bytecode
    compiled (see :meth:`snapshot`), first on every child's ``PYTHONPATH``.
    """

    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    def snapshot(self) -> str:
        """Copy the package and compile it; say which commit it is.

        Why: a user's installed package has its ``.pyc`` files, but this checkout may have none
        (with ``PYTHONDONTWRITEBYTECODE`` set, as on the development machines, every process
        would compile our modules from source while httpx's come compiled, which charges a
        compiler's time to our imports). And a snapshot keeps the code fixed for the whole run
        while others edit the tree.
        """
        shutil.copytree(
            ROOT / "mcp_client_auth",
            self.src / "mcp_client_auth",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        subprocess.run([PY, "-m", "compileall", "-q", str(self.src)], check=True)
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "mcp_client_auth"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k not in _STORE_ENV and not k.startswith("XDG_")
        }
        path = os.environ.get("PYTHONPATH")
        env.update(
            HOME=str(self.root / "home"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "data"),
            BENCH_FERNET_KEY=base64.urlsafe_b64encode(bytes(range(32))).decode(),
            PYTHONWARNINGS="ignore",
            PYTHONPATH=str(self.src) + (os.pathsep + path if path else ""),
        )
        env.update(extra)
        return env

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def child(
    mode: str, *args: str, env: dict[str, str], check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [PY, CHILD, mode, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"{mode} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return out


def child_json(mode: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    out = child(mode, *args, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(
    argv: Sequence[str], env: dict[str, str], timeout: float = 60
) -> tuple[float, subprocess.CompletedProcess[str]]:
    elapsed, _cpu, out = timed_process_cpu(argv, env, timeout)
    return elapsed, out


def timed_process_cpu(
    argv: Sequence[str], env: dict[str, str], timeout: float = 60
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, and CPU time (user + system) of the process, which others' load barely moves."""
    cpu = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, _children_cpu() - cpu, out


def interleaved_processes(
    commands: dict[str, Sequence[str]],
    env: dict[str, str],
    rounds: int,
    check: Callable[[str, subprocess.CompletedProcess[str]], None] | None = None,
) -> dict[str, list[float]]:
    """Whole-process times, each round running every command once (order rotated).

    ``times[name]`` are wall times, ``times[name + "@cpu"]`` the CPU times of the same runs.
    """
    names = list(commands)
    for name in names:  # warm-up: .pyc files and the page cache
        _, out = timed_process(commands[name], env)
        if check is not None:
            check(name, out)
    times: dict[str, list[float]] = {}
    for name in names:
        times[name], times[name + "@cpu"] = [], []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            elapsed, cpu, out = timed_process_cpu(commands[name], env)
            if check is not None:
                check(name, out)
            times[name].append(elapsed)
            times[name + "@cpu"].append(cpu)
    return times


def ratio_of(times: dict[str, list[float]], name: str, floor: str) -> float:
    """The median over rounds of the per-round ratio (drift between rounds cancels out)."""
    return median([a / b for a, b in zip(times[name], times[floor], strict=True)])


def both(times: dict[str, list[float]], name: str, floor: str) -> tuple[float, str]:
    """The wall-time ratio (what the goal is about) and its text with the CPU-time ratio."""
    wall = ratio_of(times, name, floor)
    cpu = ratio_of(times, name + "@cpu", floor + "@cpu")
    return wall, f"{wall:.2f}x (cpu {cpu:.2f}x)"


# -- a local resource server and token endpoint ---------------------------------------------------


class LocalServer:
    """A resource server (``/mcp``) and a token endpoint (``/token``) on 127.0.0.1.

    ``/mcp`` answers 200 to a token in ``valid`` and 401 with a challenge otherwise;
    ``/token`` issues a fresh token for a refresh grant. Every request is counted by path.
    """

    def __init__(self) -> None:
        self.valid: set[str] = {TOKEN}
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._issued = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                with server._lock:
                    server.counts[path] += 1
                if path == "/mcp":
                    auth = self.headers.get("Authorization", "")
                    token = auth[7:] if auth.startswith("Bearer ") else None
                    if token in server.valid:
                        self._reply(200, b'{"jsonrpc":"2.0","id":1,"result":{}}')
                    else:
                        meta = f"{server.origin}/.well-known/oauth-protected-resource/mcp"
                        self._reply(
                            401,
                            b'{"error":"invalid_token"}',
                            {"WWW-Authenticate": f'Bearer resource_metadata="{meta}"'},
                        )
                elif path == "/token":
                    form = parse_qs(body.decode())
                    if form.get("grant_type") != ["refresh_token"]:
                        self._reply(400, b'{"error":"unsupported_grant_type"}')
                        return
                    with server._lock:
                        server._issued += 1
                        token = f"fresh-{server._issued}-" + "b" * 580
                        server.valid.add(token)
                    self._reply(
                        200,
                        json.dumps(
                            {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
                        ).encode(),
                    )
                else:
                    self._reply(404, b'{"error":"not_found"}')

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.origin}/mcp"
        self.token_endpoint = f"{self.origin}/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def take_counts(self) -> Counter[str]:
        with self._lock:
            counts = self.counts
            self.counts = Counter()
        return counts

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# == 1. per request ===============================================================================

URL = "https://mcp.example.com/mcp"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'


def _sdk_storage(tokens: Any = None, client: Any = None) -> Any:
    class Storage:
        def __init__(self) -> None:
            self.tokens, self.client = tokens, client

        async def get_tokens(self) -> Any:
            return self.tokens

        async def set_tokens(self, value: Any) -> None:
            self.tokens = value

        async def get_client_info(self) -> Any:
            return self.client

        async def set_client_info(self, value: Any) -> None:
            self.client = value

    return Storage()


def _sdk_provider(url: str, storage: Any, **kwargs: Any) -> Any:
    from mcp.client.auth import OAuthClientProvider as SDKProvider
    from mcp.shared.auth import OAuthClientMetadata

    metadata = OAuthClientMetadata(
        client_name="bench",
        redirect_uris=["http://127.0.0.1:33418/callback"],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return SDKProvider(url, metadata, storage, **kwargs)


def _our_provider(url: str, expires_in: float = 3600.0, **kwargs: Any) -> Any:
    """Our provider over ``TokenStore.memory()`` holding a record for ``url``."""
    sys.path.insert(0, str(HERE))
    from _child import record

    from mcp_client_auth import OAuthClientProvider, TokenStore

    store = TokenStore.memory()
    provider = OAuthClientProvider(url, store=store, interactive=False, **kwargs)
    rec = record(
        provider.server_url,
        "https://mcp.example.com/auth/token",
        TOKEN,
        time.time() + expires_in,
    )
    asyncio.run(store.put(rec))  # type: ignore[arg-type]
    return provider


def section_per_request(report: Report, quick: bool) -> None:
    import httpx
    import httpx2
    from mcp.shared.auth import OAuthToken

    rounds, batch = (30, 30) if quick else (101, 100)
    seen: list[str | None] = []

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=b"{}")

    def handler1(request: Any) -> Any:
        return httpx.Response(200, content=b"{}")

    def checking(request: Any) -> Any:
        seen.append(request.headers.get("authorization"))
        return type_response(request)(200, content=b"{}")

    def type_response(request: Any) -> Any:
        return httpx2.Response if isinstance(request, httpx2.Request) else httpx.Response

    static = {"Authorization": f"Bearer {TOKEN}"}

    # -- httpx2.AsyncClient
    sdk = _sdk_provider(
        URL,
        _sdk_storage(OAuthToken(access_token=TOKEN, token_type="Bearer", expires_in=3600)),
    )
    ours = _our_provider(URL)

    async def run_async() -> dict[str, list[float]]:
        clients = {
            "no auth": httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
            "static": httpx2.AsyncClient(transport=httpx2.MockTransport(handler), headers=static),
            "ours": httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=ours),
            "mcp SDK": httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=sdk),
        }
        # check that each sends what it should (also the first-use load of the store)
        for name, c in clients.items():
            c._transport = httpx2.MockTransport(checking)
            seen.clear()
            for _ in range(3):
                await c.post(URL, content=BODY)
            want = None if name == "no auth" else f"Bearer {TOKEN}"
            if seen != [want] * 3:
                raise RuntimeError(f"httpx2 {name}: sent {seen[:1]!r}, not the token")
            c._transport = httpx2.MockTransport(handler)

        async def one_batch(c: Any) -> float:
            start = time.thread_time()
            for _ in range(batch):
                await c.post(URL, content=BODY)
            return (time.thread_time() - start) / batch

        times: dict[str, list[float]] = {n: [] for n in clients}
        names = list(clients)
        for name in names:  # warm-up
            await one_batch(clients[name])
        for r in range(rounds):
            gc.collect()
            for name in names[r % 4 :] + names[: r % 4]:
                times[name].append(await one_batch(clients[name]))
        for c in clients.values():
            await c.aclose()
        return times

    t2 = asyncio.run(run_async())

    # -- httpx.Client (sync; the mcp SDK's provider is httpx2-only, async-only)
    ours1 = _our_provider(URL)
    clients1 = {
        "no auth": httpx.Client(transport=httpx.MockTransport(handler1)),
        "static": httpx.Client(transport=httpx.MockTransport(handler1), headers=static),
        "ours": httpx.Client(transport=httpx.MockTransport(handler1), auth=ours1),
    }
    for name, c in clients1.items():
        c._transport = httpx.MockTransport(checking)
        seen.clear()
        for _ in range(3):
            c.post(URL, content=BODY)
        want = None if name == "no auth" else f"Bearer {TOKEN}"
        if seen != [want] * 3:
            raise RuntimeError(f"httpx {name}: sent {seen[:1]!r}, not the token")
        c._transport = httpx.MockTransport(handler1)

    def one_batch1(c: Any) -> float:
        start = time.thread_time()
        for _ in range(batch):
            c.post(URL, content=BODY)
        return (time.thread_time() - start) / batch

    t1: dict[str, list[float]] = {n: [] for n in clients1}
    names1 = list(clients1)
    for name in names1:
        one_batch1(clients1[name])
    for r in range(rounds):
        gc.collect()
        for name in names1[r % 3 :] + names1[: r % 3]:
            t1[name].append(one_batch1(clients1[name]))
    for c in clients1.values():
        c.close()

    def rows(lib: str, times: dict[str, list[float]]) -> None:
        floor = median(times["static"])
        report.add(
            "1",
            f"{lib}: no auth",
            fmt(median(times["no auth"])),
            fmt(floor),
            f"{ratio_of(times, 'no auth', 'static'):.3f}x",
            "(reference)",
            "info",
        )
        r_ours = ratio_of(times, "ours", "static")
        goal = "<= 1.05x static"
        verdict = r_ours <= 1.05
        if "mcp SDK" in times:
            r_sdk = ratio_of(times, "mcp SDK", "static")
            goal += ", < SDK"
            verdict = verdict and r_ours < r_sdk
        report.add(
            "1",
            f"{lib}: ours, valid token",
            fmt(median(times["ours"])),
            fmt(floor),
            f"{r_ours:.3f}x",
            goal,
            ok(verdict),
        )
        if "mcp SDK" in times:
            report.add(
                "1",
                f"{lib}: mcp SDK, valid token",
                fmt(median(times["mcp SDK"])),
                fmt(floor),
                f"{r_sdk:.3f}x",
                "(comparison)",
                "info",
            )

    rows("httpx2.AsyncClient", t2)
    rows("httpx.Client", t1)
    report.note(
        f"1: {rounds} interleaved rounds of {batch} POSTs per variant over MockTransport, "
        "timed in CPU time of the benchmark's thread (what other processes on a shared machine "
        "barely move); ratio = median of per-round ratios to the static header."
    )


# == 2. reconnect =================================================================================


def section_reconnect(report: Report, quick: bool, box: Sandbox, server: LocalServer) -> None:
    # One round's ratio of two 0.3 s processes spreads by a tenth or more on a shared machine,
    # as much as the goal's margin: the median of 30 rounds settles within a few hundredths.
    rounds = 3 if quick else 30
    home = box.folder("reconnect")
    env = box.env()
    child("setup-store", str(home), server.url, server.token_endpoint, TOKEN, "3600", env=env)
    server.take_counts()
    commands = {
        "static": [PY, CHILD, "reconnect-static", server.url, TOKEN],
        "ours": [PY, CHILD, "reconnect-ours", server.url, str(home)],
    }
    breakdown: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    requests: dict[str, list[Counter[str]]] = {name: [] for name in commands}

    def check(name: str, out: subprocess.CompletedProcess[str]) -> None:
        if out.returncode != 0:
            raise RuntimeError(f"reconnect {name}: {out.stderr.strip()[-500:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["status"] != 200:
            raise RuntimeError(f"reconnect {name}: HTTP {result['status']}")
        breakdown[name].append(result)
        requests[name].append(server.take_counts())

    times = interleaved_processes(commands, env, rounds, check)
    sent = requests["ours"][1:]  # after the warm-up
    totals = [sum(c.values()) for c in sent]
    report.add(
        "2",
        "reconnect: requests sent",
        f"{max(totals)}",
        f"{max(sum(c.values()) for c in requests['static'])}",
        "",
        "exactly 1",
        ok(all(t == 1 for t in totals) and all(c["/mcp"] == 1 for c in sent)),
    )
    r, text = both(times, "ours", "static")
    report.add(
        "2",
        "reconnect: start to 1st response",
        fmt(median(times["ours"])),
        fmt(median(times["static"])),
        text,
        "<= 1.10x static",
        ok(r <= 1.10),
    )
    if not quick:
        reconnect_instructions(report, commands, env)
    reconnect_redis(report, box, server, rounds)

    def part(name: str, key: str) -> str:
        return fmt(median([b[key] for b in breakdown[name][1:]]))

    total, listed = import_times(commands["static"], env)
    report.note(f"2: reconnect (static) -X importtime: {total * 1e3:.0f} ms; {listed}")
    extra = import_difference(commands["ours"], commands["static"], env, runs_=1 if quick else 3)
    report.note(f"2: reconnect (ours) imports beyond static's: {extra}")
    if not quick:
        report.note(f"2: reconnect (ours) profile: {profile_parts(commands['ours'], env, box)}")
    server.take_counts()
    report.note(
        f"2: inside the process (medians): static = imports {part('static', 'imports')} + "
        f"request {part('static', 'request')}; ours = imports {part('ours', 'imports')} + "
        f"TokenStore.default() {part('ours', 'store')} + provider and request "
        f"{part('ours', 'request')}."
    )


def reconnect_instructions(
    report: Report, commands: dict[str, list[str]], env: dict[str, str]
) -> None:
    """The reconnect counted in instructions (valgrind's callgrind), one run of each process.

    Why: the wall-time ratio of two 0.3 s processes moves by hundredths with the neighbours'
    load, while the instructions a process runs do not (to a few parts in a thousand), so this
    row says whether a change to the reconnect helped. It does not see cache misses or the page
    faults of loading a large library, which the wall time does, so it reads a little lower.
    """
    if shutil.which("valgrind") is None:
        report.add("2", "reconnect: instructions", "n/a", "", "", "(no valgrind)", "info")
        return
    counted: dict[str, int] = {}
    for name in ("static", "ours"):
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *commands[name]],
            env=env,
            capture_output=True,
            text=True,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or found is None:
            raise RuntimeError(f"reconnect {name} under callgrind: {out.stderr.strip()[-500:]}")
        counted[name] = int(found.group(1))
    report.add(
        "2",
        "reconnect: instructions (callgrind)",
        f"{counted['ours'] / 1e6:.0f} M",
        f"{counted['static'] / 1e6:.0f} M",
        f"{counted['ours'] / counted['static']:.3f}x",
        "(report)",
        "info",
    )


def reconnect_redis(report: Report, box: Sandbox, server: LocalServer, rounds: int) -> None:
    """The reconnect with the store in Redis, against the same with the disk store (both
    with the key from ``MCP_CLIENT_AUTH_KEY``, so only where the entry lives differs)."""
    with redis_server(box) as redis_url:
        if redis_url is None:
            report.add("2", "reconnect, Redis store", "n/a", "", "", "(no redis-server)", "info")
            return
        env = box.env(MCP_CLIENT_AUTH_KEY=BENCH_STORE_KEY)
        home = box.folder("reconnect-disk-envkey")
        child("setup-store", str(home), server.url, server.token_endpoint, TOKEN, "3600", env=env)
        child("setup-store-redis", redis_url, server.url, server.token_endpoint, TOKEN, env=env)
        server.take_counts()
        commands = {
            "disk": [PY, CHILD, "reconnect-ours", server.url, str(home)],
            "redis": [PY, CHILD, "reconnect-redis", server.url, redis_url],
        }

        def check(name: str, out: subprocess.CompletedProcess[str]) -> None:
            if (
                out.returncode != 0
                or json.loads(out.stdout.strip().splitlines()[-1])["status"] != 200
            ):
                raise RuntimeError(f"reconnect {name}: {out.stderr.strip()[-500:]}")

        times = interleaved_processes(commands, env, rounds, check)
        sent = server.take_counts()
    _, text = both(times, "redis", "disk")
    report.add(
        "2",
        "reconnect, Redis store: 1st response",
        fmt(median(times["redis"])),
        f"disk {fmt(median(times['disk']))}",
        text,
        "(report)",
        "info",
    )
    report.note(
        f"2: Redis store: a local redis-server on 127.0.0.1, the sync httpx.Client; "
        f"{sent['/mcp']} requests to the resource over {2 * (rounds + 1)} processes, "
        f"{sent['/token']} token requests."
    )


@contextlib.contextmanager
def redis_server(box: Sandbox) -> Iterator[str | None]:
    """A private redis-server on a free 127.0.0.1 port (no persistence); None without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = box.folder("redis")
    process = subprocess.Popen(
        [
            *(binary, "--bind", "127.0.0.1", "--port", str(port)),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(folder), "--logfile", str(folder / "redis.log")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


# == 3. the token command =========================================================================


def _eager_package_init(env: dict[str, str]) -> bool:
    """True when ``import mcp_client_auth.cli`` drags in httpx (an eager package __init__)."""
    out = subprocess.run(
        [PY, "-c", "import sys, mcp_client_auth.cli; print('httpx' in sys.modules)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    return out.stdout.strip() == "True"


def _cli_argv(*args: str) -> list[str] | None:
    if not (ROOT / "mcp_client_auth" / "cli").is_dir():
        return None
    script = BIN / "mcp-client-auth"
    if script.exists():
        return [PY, str(script), *args]
    return [PY, "-m", "mcp_client_auth", *args]


def import_profile(argv: Sequence[str], env: dict[str, str]) -> Counter[str]:
    """``-X importtime``: self time in microseconds summed by top-level package.

    Summing self times by top-level package says what each dependency costs wherever it is
    imported from (cumulative times would charge ``httpx`` to whoever imported it first).
    """
    out = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE,
        stdin=subprocess.DEVNULL,
    )
    by_package: Counter[str] = Counter()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            by_package[m.group(4).split(".")[0]] += int(m.group(1))
    return by_package


def import_times(argv: Sequence[str], env: dict[str, str], top: int = 8) -> tuple[float, str]:
    """The total import time, and the costliest packages."""
    by_package = import_profile(argv, env)
    listed = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in by_package.most_common(top))
    return sum(by_package.values()) / 1e6, listed


def import_difference(
    argv: Sequence[str], floor: Sequence[str], env: dict[str, str], top: int = 8, runs_: int = 3
) -> str:
    """What ``argv`` imports beyond ``floor``, by package (the median of ``runs_`` runs each)."""
    runs = [import_profile(argv, env) for _ in range(runs_)]
    bases = [import_profile(floor, env) for _ in range(runs_)]
    names = set().union(*runs, *bases)
    diff = {n: median([r[n] for r in runs]) - median([b[n] for b in bases]) for n in names}
    total = median([sum(r.values()) for r in runs]) - median([sum(b.values()) for b in bases])
    listed = ", ".join(
        f"{n} {us / 1000:+.0f} ms" for n, us in sorted(diff.items(), key=lambda kv: -kv[1])[:top]
    )
    return f"{total / 1000:+.0f} ms in all (noisy); by package: {listed}"


def profile_parts(argv: Sequence[str], env: dict[str, str], box: Sandbox) -> str:
    """Cumulative time in the key lookup, decryption and the store's opening (cProfile)."""
    import pstats

    prof = box.root / "token.prof"
    subprocess.run(
        [argv[0], "-m", "cProfile", "-o", str(prof), *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE,
        stdin=subprocess.DEVNULL,
    )
    stats = pstats.Stats(str(prof))
    wanted = (  # (file, function, label), cumulative times
        ("store/keys.py", "load_key", "key (keyring or key file)"),
        ("store/default.py", "open_default", "TokenStore.default()"),
        ("store/token_store.py", "resources", "listing"),
        ("store/token_store.py", "records", "TokenStore.records"),
        ("store/token_store.py", "get", "TokenStore.get"),
        ("store/encrypted.py", "_decode", "decrypt + parse"),
        ("_portal.py", "run_sync", "sync portal (thread + loop)"),
        ("store/locks.py", "try_acquire", "file lock tries"),
        ("flow.py", "obtain", "flow.obtain (lock held)"),
        ("flow.py", "refresh", "refresh"),
        ("flow_http.py", "send_sync", "the flow's request (sync)"),
        ("store/encrypted.py", "put", "store put"),
        ("store/codec.py", "_multi_fernet", "Fernet (first use)"),
        ("httpx/_config.py", "create_ssl_context", "httpx SSL context"),
    )
    found: dict[str, float] = {}
    total = 0.0
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for file, name, label in wanted:
            if func == name and filename.endswith(file):
                found[label] = max(found.get(label, 0.0), ct)
        if func == "<module>" and filename.endswith(("mcp-client-auth", "_child.py")):
            total = max(total, ct)
    parts = [f"{label} {found[label] * 1e3:.1f} ms" for _, _, label in wanted if label in found]
    return "; ".join(parts) + (f" (of {total * 1e3:.0f} ms under cProfile)" if total else "")


@contextlib.contextmanager
def secret_service(box: Sandbox) -> Iterator[str | None]:
    """A private D-Bus session with an unlocked gnome-keyring, where installed; else None."""
    bus_bin, daemon_bin = shutil.which("dbus-daemon"), shutil.which("gnome-keyring-daemon")
    if not (bus_bin and daemon_bin):
        yield None
        return
    env = box.env()
    env["HOME"] = str(box.folder("keyring-home"))
    bus = subprocess.Popen(
        [bus_bin, "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    daemon = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        daemon = subprocess.Popen(
            [daemon_bin, "--foreground", "--components=secrets", "--unlock"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert daemon.stdin is not None and daemon.stdout is not None
        daemon.stdin.write("bench-keyring-pass")
        daemon.stdin.close()
        daemon.stdout.readline()
        yield address
    finally:
        for proc in (daemon, bus):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (daemon, bus):
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def section_token_cli(report: Report, quick: bool, box: Sandbox, server: LocalServer) -> None:
    rounds = 3 if quick else 12
    home = box.folder("cli")
    env = box.env(MCP_CLIENT_AUTH_HOME=str(home))
    child("setup-store", str(home), server.url, server.token_endpoint, TOKEN, "3600", env=env)
    cli = _cli_argv("token", server.url)
    library = [PY, CHILD, "token-library", server.url, str(home)]
    commands: dict[str, Sequence[str]] = {"import httpx": [PY, "-c", "import httpx"]}
    if cli is not None:
        commands["cli"] = cli
    commands["library"] = library
    failures: dict[str, str] = {}

    def check(name: str, out: subprocess.CompletedProcess[str]) -> None:
        if name == "import httpx":
            return
        if out.returncode != 0 or out.stdout.strip() != TOKEN:
            failures[name] = (
                f"exit {out.returncode}: "
                + (out.stderr.strip().splitlines() or out.stdout.strip().splitlines() or [""])[-1]
            )

    if cli is not None:  # a CLI being written may not work yet: find out before timing it
        _, probe = timed_process(cli, env)
        check("cli", probe)
        if "cli" in failures:
            del commands["cli"]
        elif _eager_package_init(env):  # what-if: the CLI without the eager __init__
            commands["what-if"] = [PY, CHILD, "cli-lazy-init", "token", server.url]
    times = interleaved_processes(commands, env, rounds, check)
    floor = median(times["import httpx"])
    if "cli" in times and "cli" not in failures:
        r, text = both(times, "cli", "import httpx")
        report.add(
            "3",
            "CLI token, key file",
            fmt(median(times["cli"])),
            fmt(floor),
            text,
            "<= 1.0x import httpx",
            ok(r <= 1.0),
        )
        total, listed = import_times(cli, env)
        report.note(f"3: `mcp-client-auth token` -X importtime: {total * 1e3:.0f} ms; {listed}")
        if not quick:
            report.note(f"3: `mcp-client-auth token` profile: {profile_parts(cli, env, box)}")
        if "what-if" in times and "what-if" not in failures:
            r, text = both(times, "what-if", "import httpx")
            report.add(
                "3",
                "what-if: CLI token, lazy __init__",
                fmt(median(times["what-if"])),
                fmt(floor),
                text,
                "<= 1.0x import httpx",
                "info",
            )
            total, listed = import_times(commands["what-if"], env)
            report.note(f"3: what-if (lazy __init__) -X importtime: {total * 1e3:.0f} ms; {listed}")
    else:
        why = (
            failures.get("cli", "")
            if cli is not None
            else "mcp_client_auth/cli/ does not exist yet (being written)"
        )
        report.add("3", "CLI token, key file", "n/a", fmt(floor), "", "<= 1.0x import httpx", "n/a")
        report.note(f"3: CLI n/a: {why}")
    if "library" not in failures:
        r, text = both(times, "library", "import httpx")
        report.add(
            "3",
            "provider.get_token() process",
            fmt(median(times["library"])),
            fmt(floor),
            text,
            "(no goal; CLI's 1.0x)",
            "info",
        )
        total, listed = import_times(library, env)
        report.note(
            f"3: library token path (provider.get_token()) -X importtime: {total * 1e3:.0f} ms; "
            f"{listed}"
        )
        if not quick:
            report.note(f"3: library token path profile: {profile_parts(library, env, box)}")
    else:
        report.add("3", "provider.get_token() process", "error", "", "", "", "n/a")
        report.note(f"3: library token path failed: {failures['library']}")

    # -- with a real keyring (a private gnome-keyring on a private D-Bus session)
    if quick:
        report.add("3", "CLI token, keyring", "skipped", "", "", "<= 1.5x import httpx", "n/a")
        report.note("3: the keyring figure is skipped with --quick (starting a keyring costs ~5 s)")
        return
    with secret_service(box) as address:
        if address is None:
            report.add("3", "CLI token, keyring", "n/a", "", "", "<= 1.5x import httpx", "n/a")
            report.note("3: keyring n/a: dbus-daemon or gnome-keyring-daemon not installed")
            return
        khome = box.folder("cli-keyring")
        kenv = box.env(
            MCP_CLIENT_AUTH_HOME=str(khome),
            DBUS_SESSION_BUS_ADDRESS=address,
            HOME=str(box.root / "keyring-home"),
        )
        made = child_json(
            "setup-store", str(khome), server.url, server.token_endpoint, TOKEN, "3600", env=kenv
        )
        if made.get("protection") != "keyring":
            report.add("3", "CLI token, keyring", "n/a", "", "", "<= 1.5x import httpx", "n/a")
            report.note(f"3: keyring n/a: the store's key went to {made.get('protection')}")
            return
        kcommands: dict[str, Sequence[str]] = {"import httpx": [PY, "-c", "import httpx"]}
        kcli = _cli_argv("token", server.url)
        if kcli is not None and "cli" in times:
            kcommands["cli"] = kcli
        kcommands["library"] = [PY, CHILD, "token-library", server.url, str(khome)]
        failures.clear()
        ktimes = interleaved_processes(kcommands, kenv, rounds, check)
        kfloor = median(ktimes["import httpx"])
        for name, label in (
            ("cli", "CLI token, keyring"),
            ("library", "get_token() process, keyring"),
        ):
            if name not in ktimes or name in failures:
                report.add("3", label, "n/a", fmt(kfloor), "", "<= 1.5x import httpx", "n/a")
                if name in failures:
                    report.note(f"3: {label} failed: {failures[name]}")
                continue
            r, text = both(ktimes, name, "import httpx")
            report.add(
                "3",
                label,
                fmt(median(ktimes[name])),
                fmt(kfloor),
                text,
                "<= 1.5x import httpx" if name == "cli" else "(no goal)",
                ok(r <= 1.5) if name == "cli" else "info",
            )
        argv = kcommands.get("cli") or kcommands["library"]
        report.note(f"3: keyring token path profile: {profile_parts(argv, kenv, box)}")


# == 4. concurrency ===============================================================================


def section_concurrency(report: Report, quick: bool, box: Sandbox, server: LocalServer) -> None:
    import httpx2
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

    n = 200
    rounds = 1 if quick else 9
    latency = 0.005  # the token endpoint's simulated network latency

    def make_handler(counts: Counter[str], valid: set[str]) -> Callable[[Any], Any]:
        async def handler(request: Any) -> Any:
            path = request.url.path
            counts[path] += 1
            if path.endswith("/token"):
                await asyncio.sleep(latency)
                token = f"fresh-{counts[path]}-" + "c" * 580
                valid.add(token)
                return httpx2.Response(
                    200,
                    json={
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "refresh_token": "refresh-0",
                    },
                )
            await asyncio.sleep(0)
            auth = request.headers.get("authorization", "")
            if auth[7:] in valid:
                return httpx2.Response(200, content=b"{}")
            return httpx2.Response(401, headers={"WWW-Authenticate": "Bearer"})

        return handler

    def burst(
        make: Callable[[Any], tuple[Any, dict[str, str] | None]],
    ) -> tuple[float, Counter[str], int]:
        counts: Counter[str] = Counter()
        transport = httpx2.MockTransport(make_handler(counts, {TOKEN}))
        auth, headers = make(transport)  # ours sends its token request there too (transport=)
        return asyncio.run(send_all(transport, auth, headers, counts))

    async def send_all(
        transport: Any, auth: Any, headers: dict[str, str] | None, counts: Counter[str]
    ) -> tuple[float, Counter[str], int]:
        async with httpx2.AsyncClient(transport=transport, auth=auth, headers=headers) as c:
            start = time.perf_counter()
            results = await asyncio.gather(
                *(c.post(URL, content=BODY) for _ in range(n)), return_exceptions=True
            )
            elapsed = time.perf_counter() - start
        failed = sum(1 for r in results if isinstance(r, BaseException) or r.status_code != 200)
        return elapsed, counts, failed

    def sdk_expired() -> Any:
        sdk = _sdk_provider(URL, _sdk_storage())
        ctx = sdk.context
        ctx.current_tokens = OAuthToken(
            access_token="expired", token_type="Bearer", expires_in=3600, refresh_token="r"
        )
        ctx.token_expiry_time = time.time() - 1
        ctx.client_info = OAuthClientInformationFull(client_id="c")
        sdk._initialized = True
        return sdk

    results: dict[str, list[tuple[float, Counter[str], int]]] = {
        "static": [],
        "ours": [],
        "mcp SDK": [],
    }
    for r in range(rounds):
        variants: list[tuple[str, Callable[[Any], tuple[Any, Any]]]] = [
            ("static", lambda t: (None, {"Authorization": f"Bearer {TOKEN}"})),
            ("ours", lambda t: (_our_provider(URL, expires_in=-10, transport=t), None)),
            ("mcp SDK", lambda t: (sdk_expired(), None)),
        ]
        for name, make in variants[r % 3 :] + variants[: r % 3]:
            results[name].append(burst(make))

    def token_requests(name: str) -> int:
        return max(
            sum(v for k, v in c.items() if k.endswith("/token")) for _, c, _ in results[name]
        )

    def failures(name: str) -> int:
        return max(f for _, _, f in results[name])

    per_round = [o[0] / s[0] for o, s in zip(results["ours"], results["static"], strict=True)]
    per_round_sdk = [
        o[0] / s[0] for o, s in zip(results["mcp SDK"], results["static"], strict=True)
    ]
    t_ours = median([e for e, _, _ in results["ours"]])
    t_static = median([e for e, _, _ in results["static"]])
    t_sdk = median([e for e, _, _ in results["mcp SDK"]])
    report.add(
        "4",
        f"{n} concurrent, expired: token reqs",
        str(token_requests("ours")),
        f"SDK {token_requests('mcp SDK')}",
        "",
        "1 token request",
        ok(token_requests("ours") == 1 and failures("ours") == 0),
    )
    report.add(
        "4",
        f"{n} concurrent, expired: all answered",
        fmt(t_ours),
        fmt(t_static),
        f"{median(per_round):.2f}x",
        f"(SDK {fmt(t_sdk)}, {median(per_round_sdk):.2f}x)",
        "info",
    )
    report.note(
        f"4: {n} concurrent POSTs in one httpx2.AsyncClient over MockTransport; the token "
        f"endpoint answers after {latency * 1e3:.0f} ms; failures: ours {failures('ours')}, "
        f"SDK {failures('mcp SDK')}; {rounds} rounds."
    )

    # -- 8 and 32 processes sharing one disk store
    env = box.env()
    prounds = 1 if quick else 3
    procs = 8
    floor_times = _expired_processes(
        report,
        box,
        server,
        procs,
        prounds=prounds,
        goal=2.0,
        profile=not quick,
    )
    _expired_processes(report, box, server, 32, prounds=prounds, goal=3.0, profile=False)
    # the same 8 processes on a valid stored token: no refresh is needed, so any
    # serialization is the lock alone
    if not quick:
        valid = box.folder("procs-valid")
        child("setup-store", str(valid), server.url, server.token_endpoint, TOKEN, "3600", env=env)
        server.take_counts()
        elapsed, _answers = _run_together(
            [[PY, CHILD, "concurrent-ours", server.url, str(valid)]] * procs, env
        )
        counts = server.take_counts()
        report.add(
            "4",
            f"{procs} processes, valid token: answered",
            fmt(elapsed),
            fmt(median(floor_times)),
            f"{elapsed / median(floor_times):.2f}x",
            f"({sum(counts.values())} requests)",
            "info",
        )


def _expired_processes(
    report: Report,
    box: Sandbox,
    server: LocalServer,
    procs: int,
    *,
    prounds: int,
    goal: float,
    profile: bool,
) -> list[float]:
    """``procs`` processes sharing one disk store with an expired token, started together,
    against as many with a static header; the static times (the floor) are returned."""
    env = box.env()
    floor_times, our_times, token_counts, failed_counts = [], [], [], []
    ours_offsets: list[float] = []
    static_offsets: list[float] = []
    ours_marks: list[tuple[float, float, float]] = []
    without_lock: list[float] = []
    for r in range(prounds):
        home = box.folder(f"procs-{procs}-{r}")
        child("setup-store", str(home), server.url, server.token_endpoint, "old", "-10", env=env)
        server.take_counts()
        order = ["static", "ours"] if r % 2 == 0 else ["ours", "static"]
        for name in order:
            if name == "static":
                elapsed, answers = _run_together(
                    [[PY, CHILD, "concurrent-static", server.url, TOKEN]] * procs, env
                )
                floor_times.append(elapsed)
                server.take_counts()
                static_offsets = sorted(a.get("done", 0.0) - a["go"] for a in answers if "go" in a)
            else:
                elapsed, answers = _run_together(
                    [[PY, CHILD, "concurrent-ours", server.url, str(home)]] * procs, env
                )
                our_times.append(elapsed)
                counts = server.take_counts()
                token_counts.append(counts["/token"])
                failed_counts.append(sum(1 for a in answers if a.get("status") != 200))
                for a in answers:
                    if a.get("error"):
                        report.note(f"4: a process failed: {a['error']}")
                ours_offsets = sorted(a.get("done", 0.0) - a["go"] for a in answers if "go" in a)
                without_lock = sorted(
                    a["done"] - a["go"]
                    for a in answers
                    if "asked" in a and "got" not in a and "done" in a
                )
                ours_marks = sorted(
                    (a["got"] - a["go"], a["gave"] - a["got"], a["answered"] - a["gave"])
                    for a in answers
                    if "got" in a and "gave" in a and "answered" in a
                )
    report.add(
        "4",
        f"{procs} processes, expired: token reqs",
        f"{max(token_counts)}",
        "",
        "",
        "1 token request, 0 fail",
        ok(max(token_counts) == 1 and max(failed_counts) == 0),
    )
    report.add(
        "4",
        f"{procs} processes: failures",
        f"{max(failed_counts)}",
        "",
        "",
        "0",
        ok(max(failed_counts) == 0),
    )
    if profile:
        # why: one process alone on an expired store (the refresher), then one on the
        # refreshed store (what each waiter does once it has the lock)
        solo = box.folder("procs-profile")
        child("setup-store", str(solo), server.url, server.token_endpoint, "old", "-10", env=env)
        argv = [PY, CHILD, "concurrent-ours", server.url, str(solo)]
        report.note(f"4: profile, the refreshing process: {profile_parts(argv, env, box)}")
        report.note(f"4: profile, a process after the refresh: {profile_parts(argv, env, box)}")
        server.take_counts()
    report.note(
        f"4: {procs} processes, when each got its answer after the go (last round): ours "
        + ", ".join(f"{o * 1e3:.0f}" for o in ours_offsets)
        + " ms; static "
        + ", ".join(f"{o * 1e3:.0f}" for o in static_offsets)
        + " ms."
    )
    if without_lock:
        report.note(
            f"4: {procs} processes (last round): {len(without_lock)} went without the lock "
            "(the new token was stored while they waited), answered "
            + ", ".join(f"{w * 1e3:.0f}" for w in without_lock)
            + " ms after the go."
        )
    if ours_marks:
        held = [h for _, h, _ in ours_marks]
        gaps = [b[0] - (a[0] + a[1]) for a, b in itertools.pairwise(ours_marks)]
        report.note(
            "4: the cross-process lock (last round): got at "
            + ", ".join(f"{g * 1e3:.0f}" for g, _, _ in ours_marks)
            + f" ms after the go; held {fmt(min(held))}-{fmt(max(held))} "
            f"(median {fmt(median(held))}); from one release to the next holder "
            f"{fmt(min(gaps))}-{fmt(max(gaps))} (median {fmt(median(gaps))}); from release to "
            f"its answer, median {fmt(median([d for _, _, d in ours_marks]))}."
        )
    r = median([o / s for o, s in zip(our_times, floor_times, strict=True)])
    report.add(
        "4",
        f"{procs} processes: all answered",
        fmt(median(our_times)),
        fmt(median(floor_times)),
        f"{r:.2f}x",
        f"<= {goal:g}x static",
        ok(r <= goal),
    )
    return floor_times


def _run_together(
    argvs: list[list[str]], env: dict[str, str]
) -> tuple[float, list[dict[str, Any]]]:
    """Start the processes, wait until all are ready, say go; time until the last answer."""
    procs = [
        subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        for argv in argvs
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a child did not start: {line!r} {p.stderr.read()[-500:]}")  # type: ignore[union-attr]
        start = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        answers = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            lines = out.strip().splitlines()
            answers.append(json.loads(lines[-1]) if lines else {"error": err.strip()[-300:]})
        end = max(a.get("done", start) for a in answers)
        for a in answers:
            a["go"] = start
        return end - start, answers
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# == 5. first login ===============================================================================


def section_first_login(report: Report, quick: bool) -> None:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult

    sys.path.insert(0, str(ROOT / "examples"))
    from demo_servers import start_demo_servers

    from mcp_client_auth import OAuthClientProvider, TokenStore

    rounds = 1 if quick else 3
    demo = start_demo_servers(auto_approve=True)
    issuer, mcp_url = demo.issuer, demo.mcp_url

    async def browser(authorization_url: str) -> str:
        """The user's browser with consent given: one GET, the redirect not followed."""
        async with httpx2.AsyncClient(timeout=10.0) as b:
            response = await b.get(authorization_url)
        location = response.headers.get("location")
        if response.status_code not in (302, 303) or not location:
            raise RuntimeError(f"the demo authorization server answered {response.status_code}")
        return str(location)

    def kind(url: str) -> str:
        parts = urlsplit(url)
        if parts.path.startswith("/.well-known/"):
            return "discovery"
        if url.split("?")[0] == mcp_url:
            return "mcp"
        if url.startswith(issuer + "/"):
            return parts.path.strip("/")
        return "other"

    async def session(make: Callable[[Any], Any]) -> tuple[float, Counter[str]]:
        counts: Counter[str] = Counter()

        async def hook(request: Any) -> None:
            counts[kind(str(request.url))] += 1

        auth = make(hook)
        start = time.perf_counter()
        async with (
            httpx2.AsyncClient(auth=auth, event_hooks={"request": [hook]}) as http,
            Client(streamable_http_client(mcp_url, http_client=http)) as client,
        ):
            result = await client.call_tool("add", {"a": 2, "b": 3})
        elapsed = time.perf_counter() - start
        if result.is_error:
            raise RuntimeError(f"add failed: {result.content}")
        counts["browser (authorize)"] += 1
        return elapsed, counts

    def ours(hook: Callable[[Any], Awaitable[None]]) -> Any:
        class Counting(httpx2.AsyncHTTPTransport):  # the provider's own requests (transport=)
            async def handle_async_request(self, request: Any) -> Any:
                await hook(request)
                return await super().handle_async_request(request)

        return OAuthClientProvider(
            mcp_url,
            client_name="bench",
            store=TokenStore.memory(),
            login=browser,
            transport=Counting(),
        )

    def sdk(hook: Callable[[Any], Awaitable[None]]) -> Any:  # sends through the caller's client
        landing: dict[str, str] = {}

        async def redirect_handler(url: str) -> None:
            landing["url"] = await browser(url)

        async def callback_handler() -> AuthorizationCodeResult:
            query = parse_qs(urlsplit(landing["url"]).query)
            return AuthorizationCodeResult(
                code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0]
            )

        return _sdk_provider(
            mcp_url,
            _sdk_storage(),
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )

    try:
        runs: dict[str, list[tuple[float, Counter[str]]]] = {"ours": [], "mcp SDK": []}
        for r in range(rounds + 1):  # the first round warms both up
            pairs = [("ours", ours), ("mcp SDK", sdk)]
            for name, make in pairs if r % 2 == 0 else pairs[::-1]:
                result = asyncio.run(session(make))
                if r:
                    runs[name].append(result)
    finally:
        demo.stop()

    def describe(counts: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

    c_ours, c_sdk = runs["ours"][0][1], runs["mcp SDK"][0][1]
    n_ours, n_sdk = sum(c_ours.values()), sum(c_sdk.values())
    auth_ours = n_ours - c_ours["mcp"]
    auth_sdk = n_sdk - c_sdk["mcp"]
    report.add(
        "5",
        "first login: requests, total",
        str(n_ours),
        f"SDK {n_sdk}",
        f"{n_ours / n_sdk:.2f}x",
        "<= SDK",
        ok(n_ours <= n_sdk),
    )
    report.add(
        "5",
        "first login: auth requests",
        str(auth_ours),
        f"SDK {auth_sdk}",
        f"{auth_ours / auth_sdk:.2f}x",
        "<= SDK",
        ok(auth_ours <= auth_sdk),
    )
    t_ours = median([t for t, _ in runs["ours"]])
    t_sdk = median([t for t, _ in runs["mcp SDK"]])
    report.add(
        "5",
        "first login: connect+login+call",
        fmt(t_ours),
        f"SDK {fmt(t_sdk)}",
        f"{t_ours / t_sdk:.2f}x",
        "(report)",
        "info",
    )
    report.note(f"5: ours: {describe(c_ours)}")
    report.note(f"5: mcp SDK: {describe(c_sdk)}")


# == 6. scale =====================================================================================


def section_scale(report: Report, quick: bool, box: Sandbox) -> None:
    rounds = 2 if quick else 9
    count = 1000
    home = box.folder("scale") / "store"
    keys_file = box.root / "scale-keys.json"
    env = box.env(MCP_CLIENT_AUTH_HOME=str(home))
    with_ft = "no" if quick else "yes"
    child("fill-store", str(home), str(count), str(keys_file), with_ft, env=env, timeout=600)
    filetree = str(home.parent / "filetree")

    commands: dict[str, Sequence[str]] = {"import httpx": [PY, "-c", "import httpx"]}
    if not quick:  # FileTree takes seconds to fill and to read: --quick leaves it out
        commands["filetree"] = [PY, CHILD, "status-filetree", filetree, str(keys_file)]
    cli = _cli_argv("status")
    cli_error = None
    if cli is not None:
        _, probe = timed_process(cli, env)
        if probe.returncode != 0:
            cli_error = (
                f"exit {probe.returncode}: " + (probe.stderr.strip().splitlines() or [""])[-1]
            )
        elif probe.stdout.count("server-") < count:
            cli_error = (
                f"it listed {probe.stdout.count('server-')} of {count} servers: "
                + probe.stdout.strip()[:200]
            )
        else:
            commands["cli"] = cli
            if not quick:  # the same through the public interface
                commands["library"] = [PY, CHILD, "status-library", str(home)]
            # what-if: the same CLI without the package __init__'s eager imports
            if _eager_package_init(env):
                commands["what-if lazy"] = [PY, CHILD, "cli-lazy-init", "status"]

    def check(name: str, out: subprocess.CompletedProcess[str]) -> None:
        if out.returncode != 0:
            raise RuntimeError(f"status {name}: {out.stderr.strip()[-500:]}")
        if name != "import httpx" and out.stdout.count("server-") < count:
            raise RuntimeError(f"status {name} listed {out.stdout.count('server-')} servers")

    if "cli" not in commands:
        commands["library"] = [PY, CHILD, "status-library", str(home)]
    times = interleaved_processes(commands, env, rounds, check)
    ft = "filetree" in times

    def status_row(name: str, label: str, verdict: bool = True) -> None:
        wall, cpu = median(times[name]), median(times[name + "@cpu"])
        report.add(
            "6",
            label,
            f"{fmt(wall)} (cpu {fmt(cpu)})",
            f"FT {fmt(median(times['filetree']))}" if ft else "FT: full run",
            both(times, name, "filetree")[1] if ft else "",
            "< 0.2 s (cpu)",
            ok(cpu < 0.2) if verdict else "info",
        )

    if "cli" in times:
        status_row("cli", f"CLI status, {count:,} servers")
        if "what-if lazy" in times:
            status_row("what-if lazy", "what-if: CLI status, lazy __init__", verdict=False)
    else:
        why = cli_error or "mcp_client_auth/cli/ does not exist yet (being written)"
        report.add("6", f"CLI status, {count:,} servers", "n/a", "", "", "< 0.2 s (cpu)", "n/a")
        report.note(f"6: CLI status n/a: {why}")
    if "library" in times:
        status_row("library", f"status via library, {count:,}")
    lk = child_json(
        "lookup", str(home), str(keys_file), "300" if quick else "2000", with_ft, env=env
    )
    report.add(
        "6",
        f"lookup of one among {count:,}",
        fmt(lk["ours"]),
        f"FT {fmt(lk['filetree'])}" if ft else "FT: full run",
        f"{lk['ours'] / lk['filetree']:.3f}x" if ft else "",
        "< FileTree+Fernet",
        ok(lk["ours"] < lk["filetree"]) if ft else "n/a",
    )
    report.note(
        '6: calibration in the same run: `python -c "import httpx"` '
        f"{fmt(median(times['import httpx']))} (cpu {fmt(median(times['import httpx@cpu']))}) "
        "as a whole process; FT = py-key-value-aio FileTreeStore + FernetEncryptionWrapper "
        "reading all entries (it cannot enumerate keys through the wrapper)"
        + ("; left out with --quick." if quick else ".")
    )
    name = "cli" if "cli" in times else "library"
    total, listed = import_times(commands[name], env)
    report.note(f"6: status ({name}) -X importtime: {total * 1e3:.0f} ms; {listed}")
    if not quick:
        report.note(f"6: status ({name}) profile: {profile_parts(commands[name], env, box)}")
        if "cli" in times:
            status_keyring(report, box, count, rounds)


def status_keyring(report: Report, box: Sandbox, count: int, rounds: int) -> None:
    """``status`` over ``count`` servers with the store's key in a real keyring, on wall time.

    The key-file row is judged on CPU time; a user with a desktop keyring waits for the
    Secret Service's answers over D-Bus too, which CPU time of the process does not count.
    """
    label = f"CLI status, {count:,}, keyring"
    with secret_service(box) as address:
        if address is None:
            report.add("6", label, "n/a", "", "", "< 0.2 s (wall)", "n/a")
            report.note("6: keyring n/a: dbus-daemon or gnome-keyring-daemon not installed")
            return
        home = box.folder("scale-keyring") / "store"
        env = box.env(
            MCP_CLIENT_AUTH_HOME=str(home),
            DBUS_SESSION_BUS_ADDRESS=address,
            HOME=str(box.root / "keyring-home"),
        )
        keys_file = box.root / "scale-keyring-keys.json"
        made = child_json("fill-store", str(home), str(count), str(keys_file), "no", env=env)
        if made.get("protection") != "keyring":
            report.add("6", label, "n/a", "", "", "< 0.2 s (wall)", "n/a")
            report.note(f"6: keyring n/a: the store's key went to {made.get('protection')}")
            return
        cli = _cli_argv("status")
        assert cli is not None  # the caller ran the key-file row with it

        def check(name: str, out: subprocess.CompletedProcess[str]) -> None:
            if out.returncode != 0:
                raise RuntimeError(f"status {name}: {out.stderr.strip()[-500:]}")
            if name == "cli" and out.stdout.count("server-") < count:
                raise RuntimeError(f"status {name} listed {out.stdout.count('server-')} servers")

        commands: dict[str, Sequence[str]] = {
            "import httpx": [PY, "-c", "import httpx"],
            "cli": cli,
        }
        times = interleaved_processes(commands, env, rounds, check)
        wall, cpu = median(times["cli"]), median(times["cli@cpu"])
        report.add(
            "6",
            label,
            f"{fmt(wall)} (cpu {fmt(cpu)})",
            f"httpx {fmt(median(times['import httpx']))}",
            both(times, "cli", "import httpx")[1],
            "< 0.2 s (wall)",
            ok(wall < 0.2),
        )
        report.note(f"6: status (cli, keyring) profile: {profile_parts(cli, env, box)}")
        parts = child_json("keyring-parts", str(home), env=env)
        if parts.get("found"):
            steps = "; ".join(f"{k} {fmt(v)}" for k, v in parts["parts"].items())
            report.note(f"6: reading the key from the Secret Service, step by step: {steps}")
            ours: list[dict[str, Any]] = []
            via: list[dict[str, Any]] = []
            for _ in range(rounds):  # interleaved
                ours.append(child_json("keyring-parts", str(home), env=env))
                via.append(child_json("keyring-backend", str(home), env=env))
            report.note(
                "6: a process reading the key through secretstorage (the store's way) "
                f"{fmt(median([p['seconds'] for p in ours]))}, through keyring's SecretService "
                f"backend {fmt(median([v['seconds'] for v in via]))} (start to secret, medians "
                f"of {rounds}, interleaved)"
            )


# == 7. memory ====================================================================================


def section_memory(report: Report, quick: bool, box: Sandbox, server: LocalServer) -> None:
    rounds = 1 if quick else 5
    home = box.folder("memory")
    env = box.env()
    child("setup-store", str(home), server.url, server.token_endpoint, TOKEN, "3600", env=env)
    modes = {
        "python": ("memory-python",),
        "floor": ("memory-floor", server.url, TOKEN),
        "ours": ("memory-ours", server.url, str(home)),
        "mcp SDK": ("memory-sdk", server.url, TOKEN),
    }
    rss: dict[str, list[int]] = {k: [] for k in modes}
    mods: dict[str, int] = {}
    for r in range(rounds):
        names = list(modes)
        for name in names[r % 4 :] + names[: r % 4]:
            result = child_json(*modes[name], env=env)
            if result["status"] != 200:
                raise RuntimeError(f"memory {name}: HTTP {result['status']}")
            rss[name].append(result["rss_kib"])
            mods[name] = result["modules"]
    # where the difference goes: the floor plus one more import each
    extras = {
        "httpx2": ("httpx2",),
        "cryptography.fernet": ("cryptography.fernet",),
        "asyncio": ("asyncio",),
        "the provider's modules": ("mcp_client_auth.provider",),
        "all our modules": (
            "mcp_client_auth.provider",
            "mcp_client_auth.store.default",
            "cryptography.fernet",
            "asyncio",
        ),
    }
    plus: dict[str, float] = {}
    for label, mods_ in extras.items() if not quick else ():
        result = child_json("memory-floor-plus", server.url, TOKEN, *mods_, env=env)
        plus[label] = result["rss_kib"] / 1024
    mb = {k: median(v) / 1024 for k, v in rss.items()}
    if plus:
        report.note(
            "7: the floor plus one import: "
            + ", ".join(f"{label} {v - mb['floor']:+.1f} MB" for label, v in plus.items())
            + " (the provider's modules include httpx2)."
        )
    report.add(
        "7",
        "peak RSS: httpx.Client + provider+store",
        f"{mb['ours']:.1f} MB",
        f"{mb['floor']:.1f} MB",
        f"{mb['ours'] / mb['floor']:.2f}x",
        "(report; < SDK)",
        ok(mb["ours"] < mb["mcp SDK"]),
    )
    report.add(
        "7",
        "peak RSS: httpx2 + mcp SDK provider",
        f"{mb['mcp SDK']:.1f} MB",
        f"{mb['floor']:.1f} MB",
        f"{mb['mcp SDK'] / mb['floor']:.2f}x",
        "(comparison)",
        "info",
    )
    report.note(
        f"7: +{mb['ours'] - mb['floor']:.1f} MB over the same httpx.Client process without auth "
        f"(bare interpreter {mb['python']:.1f} MB); modules loaded: floor {mods['floor']}, "
        f"ours {mods['ours']}, mcp SDK {mods['mcp SDK']}."
    )


# == main =========================================================================================


SECTIONS = {
    "1": "per request",
    "2": "reconnect",
    "3": "token CLI",
    "4": "concurrency",
    "5": "first login",
    "6": "scale",
    "7": "memory",
}


def print_table(report: Report, header: str) -> None:
    cols = ("#", "figure", "ours", "floor / other", "ratio", "goal", "")
    rows = [cols] + [
        (r.section, r.figure, r.ours, r.other, r.ratio, r.goal, r.verdict) for r in report.rows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    print(header)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if report.notes:
        print()
        for note in report.notes:
            print(f"  {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (under 60 s)")
    parser.add_argument("--only", default="", help="sections to run, e.g. 1,4 (default: all)")
    parser.add_argument("--dir", type=Path, default=None, help="where the temp stores go")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"--only takes section numbers 1-7, not {', '.join(unknown)}")

    parent = args.dir or HERE
    parent.mkdir(parents=True, exist_ok=True)
    box = Sandbox(Path(tempfile.mkdtemp(prefix=".bench-run-", dir=parent)))
    report = Report()
    started = time.perf_counter()
    try:
        code = box.snapshot()
    except BaseException:
        shutil.rmtree(box.root, ignore_errors=True)
        raise
    sys.path.insert(0, str(box.src))  # this process tests the same snapshot
    server = LocalServer()
    try:
        for key in only:
            t = time.perf_counter()
            try:
                if key == "1":
                    section_per_request(report, args.quick)
                elif key == "2":
                    section_reconnect(report, args.quick, box, server)
                elif key == "3":
                    section_token_cli(report, args.quick, box, server)
                elif key == "4":
                    section_concurrency(report, args.quick, box, server)
                elif key == "5":
                    section_first_login(report, args.quick)
                elif key == "6":
                    section_scale(report, args.quick, box)
                elif key == "7":
                    section_memory(report, args.quick, box, server)
            except Exception as exc:  # one broken section must not hide the others
                report.add(key, f"{SECTIONS[key]}: error", "", "", "", "", "n/a")
                report.note(f"{key}: {type(exc).__name__}: {str(exc)[:600]}")
            print(
                f"[{key} {SECTIONS[key]}: {time.perf_counter() - t:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
    finally:
        server.close()
        shutil.rmtree(box.root, ignore_errors=True)
    mode = "quick" if args.quick else "full"
    header = (
        f"mcp-client-auth benchmarks, code {code} ({mode}, python {sys.version.split()[0]}, "
        f"{sys.platform}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, "
        f"{time.perf_counter() - started:.0f} s)"
    )
    print_table(report, header)
    missed = sum(1 for r in report.rows if r.verdict == "MISSED")
    print(f"\n{missed} goal(s) missed" if missed else "\nall goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
