"""A process that reconnects with a valid stored token does one read and sends its request:
no steps, no performer, no event loop, and none of the code a refresh or a login needs.

What a reconnecting process loads is what it costs (``benchmarks/run.py``, section 2). Real
processes: one writes the default store, a new one reconnects through ``httpx.Client`` to a
resource on 127.0.0.1 that checks the token; then a third one finds the token expired and
refreshes it at the same server's token endpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

TOKEN = "stored-access-token"

WRITE = """
import asyncio, sys, time
from mcp_client_auth import TokenStore
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet
base, folder, expires_in, token = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
record = ServerRecord(
    resource=base + "/mcp",
    issuer=base,
    server_metadata={"issuer": base, "token_endpoint": base + "/token"},
    client=ClientRegistration("c1", redirect_uris=("http://127.0.0.1:1/cb",), issuer=base),
    tokens=TokenSet(token, expires_at=time.time() + expires_in, refresh_token="r1"),
)
asyncio.run(TokenStore.default(folder).put(record))
"""

RECONNECT = """
import sys, httpx
from mcp_client_auth import OAuthClientProvider, TokenStore
url, folder = sys.argv[1] + "/mcp", sys.argv[2]
auth = OAuthClientProvider(url, store=TokenStore.default(folder), interactive=False)
with httpx.Client(auth=auth) as client:
    status = client.get(url).status_code
print(status)
ours = ("mcp_client_auth", "asyncio", "anyio")
print(" ".join(sorted(name for name in sys.modules if name.startswith(ours))))
"""

# what a refresh or a login needs, never a reconnect
NOT_ON_RECONNECT = {
    "asyncio",
    "anyio._core._sockets",
    "mcp_client_auth._portal",
    "mcp_client_auth.drive",
    "mcp_client_auth.perform_sync",
    "mcp_client_auth.perform_async",
    "mcp_client_auth.flow_http",
    "mcp_client_auth.challenges",
    "mcp_client_auth.registration",
    "mcp_client_auth.grants",
    "mcp_client_auth.token_endpoint",
    "mcp_client_auth.machine_grant",
    "mcp_client_auth.logout",
}


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """``/mcp`` answers 200 to a valid token and 401 otherwise; ``/token`` refreshes."""
    valid = {TOKEN}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append(self.path)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            self._send(200 if token in valid else 401, {})

        def do_POST(self) -> None:
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            valid.add("refreshed")
            self._send(200, {"access_token": "refreshed", "token_type": "Bearer"})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(code: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_a_reconnect_loads_no_driver_no_event_loop_and_no_refresh_code(
    server: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, seen = server
    folder = str(tmp_path / "store")
    run(WRITE, base, folder, "3600", TOKEN)
    status, loaded = run(RECONNECT, base, folder)
    assert status == "200"
    assert seen == ["/mcp"]  # one request, with the stored token
    assert "mcp_client_auth.provider" in loaded.split()  # the list is what it seems
    assert not NOT_ON_RECONNECT & set(loaded.split()), loaded


def test_an_expired_stored_token_is_refreshed_by_a_sync_client(
    server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The control: the same process on an expired token takes the refresh path (the first
    read does not hide it), and a sync client's refresh of the default store still needs no
    event loop: neither for the token request nor for the write."""
    base, seen = server
    folder = str(tmp_path / "store")
    run(WRITE, base, folder, "-10", TOKEN)
    status, loaded = run(RECONNECT, base, folder)
    assert status == "200"
    assert seen == ["/token", "/mcp"]
    assert {"mcp_client_auth.drive", "mcp_client_auth.flow_http"} <= set(loaded.split())
    assert "anyio._core._sockets" not in loaded.split()  # the async HTTP stack never connected
    assert "asyncio" not in loaded.split()


GET_TOKEN = """
import sys
from mcp_client_auth import OAuthClientProvider, TokenStore
url, folder = sys.argv[1] + "/mcp", sys.argv[2]
auth = OAuthClientProvider(url, store=TokenStore.default(folder), interactive=False)
print(auth.get_token().access_token == sys.argv[3])
ours = ("mcp_client_auth", "asyncio", "anyio")
print(" ".join(sorted(name for name in sys.modules if name.startswith(ours))))
"""


@pytest.mark.parametrize("expires_in", ["3600", "-10"], ids=["valid", "expired"])
def test_get_token_with_a_stored_token_starts_no_event_loop(
    server: tuple[str, list[str]], tmp_path: Path, expires_in: str
) -> None:
    """A command-line tool that needs a token (``provider.get_token()``): with a valid stored
    token it reads the store once and answers, with no portal thread and no event loop; an
    expired one is refreshed at the token endpoint (the control: the first read hides no
    refresh)."""
    base, seen = server
    folder = str(tmp_path / "store")
    run(WRITE, base, folder, expires_in, TOKEN)
    same, loaded = run(GET_TOKEN, base, folder, TOKEN if expires_in == "3600" else "refreshed")
    assert same == "True"
    if expires_in == "3600":
        assert seen == []  # nothing sent: the stored token is the answer
        assert "mcp_client_auth.provider" in loaded.split()
        assert not NOT_ON_RECONNECT & set(loaded.split()), loaded
    else:
        assert seen == ["/token"]
