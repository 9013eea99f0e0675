"""The sync driver called from inside a running event loop.

An ``async def`` that uses a plain ``httpx.Client(auth=provider)`` (or calls
``provider.get_token()``) blocks its own loop while the call runs: the provider must not
schedule the store's or the flow's coroutines on that loop (they would never run: a
deadlock), nor fail because a loop is already running. It hands them to its own portal
thread. A deadlock fails these tests by their timeout; each test counts the requests sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from cryptography.fernet import Fernet

from mcp_client_auth import OAuthClientProvider, TokenStore

from .fake_servers import RESOURCE, FakeServers
from .test_provider_flow import call, provider

pytestmark = pytest.mark.timeout(30)

LIBRARIES = {"httpx": httpx, "httpx2": httpx2}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The in-memory store, and the encrypted disk store (whose lock is a file lock)."""
    if request.param == "memory":
        return TokenStore.memory()
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    return TokenStore.default(tmp_path / "store")


def logged_in(
    servers: FakeServers, store: TokenStore, combo: str = "httpx-sync"
) -> OAuthClientProvider:
    """A provider (its own requests with ``combo``'s library) whose stored token the client
    sees as expired at once (``reported_ttl=0`` on ``servers``), so its next use refreshes."""
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    servers.seen.clear()
    return provider(servers, store, combo=combo)


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_sync_client_refreshes_inside_a_running_loop(library: str, store: TokenStore) -> None:
    servers = FakeServers(reported_ttl=0)
    auth = logged_in(servers, store, f"{library}-sync")
    lib = LIBRARIES[library]
    transport = lib.MockTransport(servers.handler)

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        with lib.Client(transport=transport, auth=auth) as client:
            status = client.post(RESOURCE, json=PING).status_code
        assert asyncio.get_running_loop() is loop
        # the caller's loop still serves the same provider's async driver afterwards
        async with lib.AsyncClient(transport=transport, auth=auth) as client:
            again = (await client.post(RESOURCE, json=PING)).status_code
        return status, again

    assert asyncio.run(main()) == (200, 200)
    sent = [(s.path, s.form.get("grant_type")) for s in servers.seen]
    assert sent == [
        ("/token", "refresh_token"),
        ("/mcp", None),
        ("/token", "refresh_token"),  # reported_ttl=0: expired again at once
        ("/mcp", None),
    ]


def test_get_token_refreshes_inside_a_running_loop(store: TokenStore) -> None:
    servers = FakeServers(reported_ttl=0)
    auth = logged_in(servers, store)

    async def main() -> str:
        return auth.get_token().access_token

    token = asyncio.run(main())
    assert token in servers.access
    assert [(s.path, s.form.get("grant_type")) for s in servers.seen] == [
        ("/token", "refresh_token")
    ]


def test_sync_login_inside_a_running_loop() -> None:
    """The first use, with a login callable, from a sync client inside a running loop."""
    servers = FakeServers()
    transport = httpx.MockTransport(servers.handler)
    auth = provider(servers, TokenStore.memory(), transport=transport)

    async def main() -> int:
        with httpx.Client(transport=transport, auth=auth) as client:
            return client.post(RESOURCE, json=PING).status_code

    assert asyncio.run(main()) == 200
    assert servers.count("/token") == 1 and servers.count("/register") == 1
