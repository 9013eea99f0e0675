"""The flow's own requests go through a client of the provider's, never the caller's.

What that client must do: use the library of the request being authorized (httpx or httpx2),
follow no redirect of a POST whatever the caller's client does, follow a metadata redirect only
within its origin and a few hops, carry none of the caller's default headers, read no more
than 1 MiB of any answer, and turn a dead network into the flow step's typed error. Its total
deadline is tested in test_deadline.py, compressed answers (and bombs) in test_compression.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

from mcp_client_auth import (
    ConfigurationError,
    DiscoveryError,
    MCPAuthError,
    OAuthClientProvider,
    TokenStore,
)
from tests.servers.in_thread import serve_in_thread
from tests.servers.processes import listening_socket

from .drive import assert_clean, outcome, provider, send
from .hostile import EVIL, Hostile, Reply

LIBS: dict[str, Any] = {"httpx": httpx, "httpx2": httpx2}
MIB = 1024 * 1024


@pytest.fixture
def live() -> Iterator[Hostile]:
    """The servers on 127.0.0.1, reached over real sockets (no transport given)."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    servers = Hostile(resource=f"http://127.0.0.1:{port}/mcp", issuer=f"http://127.0.0.1:{port}")
    served = serve_in_thread(servers.asgi, sock)
    try:
        yield servers
    finally:
        served.stop()


def get_through(lib: str, mode: str, auth: Any, url: str, **options: Any) -> int:
    module = LIBS[lib]
    if mode == "sync":
        with module.Client(auth=auth, trust_env=False, **options) as client:
            return int(client.get(url).status_code)

    async def run() -> int:
        async with module.AsyncClient(auth=auth, trust_env=False, **options) as client:
            return int((await client.get(url)).status_code)

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
def test_own_requests_use_the_library_of_the_request(live: Hostile, lib: str, mode: str) -> None:
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    assert get_through(lib, mode, auth, live.resource) == 200
    flow = [s for s in live.seen if live.route(s) != "resource"]
    assert {live.route(s) for s in flow} >= {"prm", "asm", "register", "token"}
    agents = {s.headers.get("user-agent", "").split("/")[0] for s in flow}
    assert agents == {f"python-{lib}"}


def test_caller_default_headers_stay_with_the_caller(live: Hostile) -> None:
    """An API key the caller sets on its client is for the resource, not for the AS."""
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    status = get_through("httpx", "sync", auth, live.resource, headers={"X-Api-Key": "k-77"})
    assert status == 200
    flow = [s for s in live.seen if live.route(s) != "resource"]
    assert flow and all("x-api-key" not in s.headers for s in flow)
    assert all(s.headers.get("x-api-key") == "k-77" for s in live.seen if s not in flow)


@pytest.mark.parametrize("combo", ["httpx-sync", "httpx2-async"])
@pytest.mark.parametrize("follow", [False, True])
def test_registration_redirect_is_never_followed(combo: str, follow: bool) -> None:
    servers = Hostile()
    servers.hooks["register"] = lambda seen: Reply(307, b"", [("location", f"{EVIL}/reg")])
    error = outcome(servers, provider(servers, combo=combo), combo=combo, follow_redirects=follow)
    assert isinstance(error, Exception)
    assert servers.requests_to(EVIL) == []
    assert servers.token_requests() == []


def test_same_origin_metadata_redirect_followed_without_the_caller_asking() -> None:
    """The caller's client follows no redirects (httpx's default); metadata that moved
    within its origin is still found."""
    servers = Hostile()
    moved = servers.prm_url.replace("/.well-known/", "/moved/.well-known/")
    servers.hooks["prm"] = lambda seen: Reply(301, b"", [("location", moved)])
    servers.hooks["unknown"] = lambda seen: (
        servers.correct("prm", seen) if seen.url == moved else None
    )
    assert send(servers, provider(servers), follow_redirects=False).status_code == 200


def test_endless_same_origin_redirects_stop_after_a_few_hops() -> None:
    servers = Hostile()
    hops: list[str] = []

    def loop(seen: Any) -> Reply:
        hops.append(seen.url)
        return Reply(302, b"", [("location", f"https://mcp.example.com/loop/{len(hops)}")])

    servers.hooks["prm"] = loop
    servers.hooks["unknown"] = lambda seen: loop(seen) if "/loop/" in seen.url else None
    error = outcome(servers, provider(servers))
    assert isinstance(error, MCPAuthError), error  # no metadata found: the flow stops typed
    assert 0 < len(hops) <= 2 * 6  # two metadata URLs, each at most 1 + 5 hops
    assert servers.token_requests() == []


@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
def test_get_token_reads_at_most_about_1_mib_of_an_endless_body(lib: str) -> None:
    """The standalone path (async): an endless chunked answer is cut off near the cap."""
    module = LIBS[lib]
    consumed: list[int] = []

    async def endless() -> Any:
        for _ in range(64):
            consumed.append(1)
            yield b"x" * MIB

    def handler(request: Any) -> Any:
        return module.Response(200, content=endless())

    auth = OAuthClientProvider(
        "https://mcp.example.com/mcp",
        store=TokenStore.memory(),
        transport=module.MockTransport(handler),
    )
    with pytest.raises(DiscoveryError) as info:
        auth.get_token()
    assert_clean(info.value, DiscoveryError, r"larger than 1 MiB")
    assert len(consumed) <= 2


def test_get_token_with_an_httpx2_transport_uses_httpx2() -> None:
    servers = Hostile()
    auth = provider(servers, transport=httpx2.MockTransport(servers.handler))
    assert auth.get_token().access_token
    agents = {s.headers.get("user-agent", "").split("/")[0] for s in servers.seen}
    assert agents == {"python-httpx2"}


@pytest.mark.parametrize(
    "transport", [object(), "http://proxy:3128", httpx.URL("http://proxy:3128")]
)
def test_a_transport_that_is_not_one_is_a_configuration_error(transport: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"transport= must be an httpx or httpx2"):
        OAuthClientProvider("https://mcp.example.com/mcp", transport=transport)


class SyncOnly(httpx.BaseTransport):
    """A transport only sync clients can use (like httpx.HTTPTransport)."""

    def __init__(self, servers: Hostile) -> None:
        self.inner = httpx.MockTransport(servers.handler)
        self.threads: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import threading

        self.threads.add(threading.current_thread().name)
        return self.inner.handle_request(request)


class AsyncOnly(httpx.AsyncBaseTransport):
    """A transport only async clients can use (like httpx.AsyncHTTPTransport)."""

    def __init__(self, servers: Hostile) -> None:
        self.inner = httpx.MockTransport(servers.handler)
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await self.inner.handle_async_request(request)


def test_a_sync_only_transport_serves_get_token_and_async_clients() -> None:
    servers = Hostile()
    transport = SyncOnly(servers)
    auth = OAuthClientProvider(
        servers.resource, store=TokenStore.memory(), login=servers.approve, transport=transport
    )
    assert auth.get_token().access_token  # the standalone driver is async
    assert transport.threads and "MainThread" not in transport.threads  # from a worker thread
    later = OAuthClientProvider(  # its clock says the token expired: the async driver refreshes
        servers.resource,
        store=auth.store,
        login=servers.approve,
        transport=transport,
        clock=lambda: time.time() + 7200,
    )

    async def run() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(servers.handler)) as client:
            return int((await client.get(servers.resource, auth=later)).status_code)

    assert asyncio.run(run()) == 200
    assert servers.logins == 1 and len(servers.token_requests("refresh_token")) == 1


def test_an_async_only_transport_serves_sync_clients() -> None:
    servers = Hostile()
    transport = AsyncOnly(servers)
    auth = OAuthClientProvider(
        servers.resource, store=TokenStore.memory(), login=servers.approve, transport=transport
    )
    with httpx.Client(transport=httpx.MockTransport(servers.handler), auth=auth) as client:
        assert client.get(servers.resource).status_code == 200
    assert transport.sent >= 4  # discovery (2), registration, token
    assert servers.logins == 1
