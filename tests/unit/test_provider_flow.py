"""The whole flow through the provider, in all four combinations of library and driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest

from mcp_client_auth import OAuthClientProvider, TokenStore

from .fake_servers import ISSUER, RESOURCE, FakeServers

COMBOS = ["httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async"]


LIBS = {"httpx": httpx, "httpx2": httpx2}


def own_transport(servers: FakeServers, combo: str = "httpx-sync") -> Any:
    """The ``transport=`` that sends a provider's own requests (discovery, token...) to the
    fake servers with the combo's library, as a client of the request's library sends them
    to the real servers."""
    return LIBS[combo.split("-")[0]].MockTransport(servers.handler)


def call(combo: str, servers: FakeServers, auth: Any, url: str = RESOURCE) -> Any:
    """POST to ``url`` through the combo's client with ``auth``; return the response."""
    lib = LIBS[combo.split("-")[0]]
    transport = lib.MockTransport(servers.handler)
    if combo.endswith("sync") and not combo.endswith("async"):
        with lib.Client(transport=transport, auth=auth) as client:
            return client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    async def run() -> Any:
        async with lib.AsyncClient(transport=transport, auth=auth) as client:
            return await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    return asyncio.run(run())


def provider(
    servers: FakeServers,
    store: TokenStore | None = None,
    *,
    combo: str = "httpx-sync",
    **kwargs: Any,
) -> OAuthClientProvider:
    """A provider whose own requests reach the fake servers (:func:`own_transport`), with
    ``combo``'s library."""
    login: Callable[[str], str] = kwargs.pop("login", servers.approve)
    kwargs.setdefault("transport", own_transport(servers, combo))
    return OAuthClientProvider(RESOURCE, store=store or TokenStore.memory(), login=login, **kwargs)


@pytest.mark.parametrize("combo", COMBOS)
def test_first_request_runs_the_whole_flow(combo: str) -> None:
    servers = FakeServers()
    auth = provider(servers, combo=combo)
    response = call(combo, servers, auth)
    assert response.status_code == 200
    paths = [s.path for s in servers.seen]
    assert paths == [
        "/mcp",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/register",
        "/token",
        "/mcp",
    ]
    token_form = servers.seen[4].form
    assert token_form["resource"] == RESOURCE
    assert token_form["grant_type"] == "authorization_code"
    assert len(token_form["code_verifier"]) >= 43
    registration = servers.clients[token_form["client_id"]]
    assert registration["redirect_uris"][0].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("combo", COMBOS)
def test_second_provider_with_same_store_sends_one_request(combo: str) -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    servers.seen.clear()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    assert [s.path for s in servers.seen] == ["/mcp"]


@pytest.mark.parametrize("combo", COMBOS)
def test_expired_token_is_refreshed_before_the_request(combo: str) -> None:
    servers = FakeServers(reported_ttl=0)  # seen as expired at once
    store = TokenStore.memory()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    servers.seen.clear()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    assert [s.path for s in servers.seen] == ["/token", "/mcp"]
    assert servers.seen[0].form["grant_type"] == "refresh_token"
    assert servers.seen[0].form["resource"] == RESOURCE


@pytest.mark.parametrize("combo", COMBOS)
def test_refused_refresh_falls_back_to_login(combo: str) -> None:
    servers = FakeServers(reported_ttl=0)
    store = TokenStore.memory()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    servers.refuse_refresh = True
    servers.seen.clear()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    paths = [s.path for s in servers.seen]
    assert paths[0] == "/token" and paths[-1] == "/mcp"
    assert servers.count("/register") == 0  # the stored registration is reused
    assert paths.count("/token") == 2


@pytest.mark.parametrize("combo", COMBOS)
def test_step_up_requests_the_union_of_scopes(combo: str) -> None:
    """The first login asks for what the metadata lists; the resource then answers 403
    insufficient_scope for ``admin``, and the second login asks for all of it at once."""
    servers = FakeServers(scopes_supported=["read", "write"], required_scope="admin")
    asked: list[str] = []

    def login(url: str) -> str:
        asked.append(parse_qs(urlsplit(url).query)["scope"][0])
        return servers.approve(url)

    response = call(combo, servers, provider(servers, scopes=None, login=login, combo=combo))
    assert response.status_code == 200
    assert asked == ["read write", "read write admin"]
    codes = [s.form for s in servers.seen if s.path == "/token"]
    assert [f["grant_type"] for f in codes] == ["authorization_code"] * 2
    granted = [g["scope"] for g in servers.access.values()]
    assert granted == ["read write", "read write admin"]
    # no token, the first token (403), the stepped-up one (200)
    assert servers.count("/mcp") == 3
    assert response.json()["scope"] == "read write admin"


@pytest.mark.parametrize("combo", COMBOS)
def test_token_is_not_sent_to_other_origins(combo: str) -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    auth = provider(servers, store, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    servers.seen.clear()
    call(combo, servers, auth, url="https://elsewhere.example.com/mcp")
    call(combo, servers, auth, url=f"{ISSUER}/mcp")
    call(combo, servers, auth, url="https://mcp.example.com/other")
    assert all("authorization" not in s.headers for s in servers.seen)


def test_concurrent_requests_on_an_expired_token_make_one_token_request() -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    assert (
        call("httpx2-async", servers, provider(servers, store, combo="httpx2-async")).status_code
        == 200
    )
    servers.seen.clear()
    later = time.time() + 3600  # the stored token has expired for this provider

    async def slow_token_endpoint(request: Any) -> Any:
        # a token endpoint that takes a while, so the other requests queue on the lock
        if request.url.path == "/token":
            await asyncio.sleep(0.005)
        return servers.handler(request)

    transport = httpx2.MockTransport(slow_token_endpoint)
    auth = provider(servers, store, combo="httpx2-async", clock=lambda: later, transport=transport)

    async def run() -> list[int]:
        async with httpx2.AsyncClient(transport=transport, auth=auth) as client:
            responses = await asyncio.gather(*(client.get(RESOURCE) for _ in range(200)))
        return [r.status_code for r in responses]

    assert asyncio.run(run()) == [200] * 200
    assert servers.count("/token") == 1
