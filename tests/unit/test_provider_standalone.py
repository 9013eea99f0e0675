"""get_token, login and logout: the provider used without an HTTP request (CLI tools)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import LoginRequiredError, OAuthClientProvider, TokenStore

from .fake_servers import RESOURCE, FakeServers


@pytest.fixture
def servers(httpx_mock: HTTPXMock) -> FakeServers:
    fake = FakeServers()
    httpx_mock.add_callback(fake.handler, is_reusable=True, is_optional=True)
    return fake


def make(servers: FakeServers, store: TokenStore, **kwargs: Any) -> OAuthClientProvider:
    return OAuthClientProvider(RESOURCE, store=store, login=servers.approve, **kwargs)


def test_get_token_logs_in_once_then_reuses_the_store(servers: FakeServers) -> None:
    store = TokenStore.memory()
    first = make(servers, store).get_token()
    assert first.access_token in servers.access
    servers.seen.clear()
    again = make(servers, store).get_token()
    assert again.access_token == first.access_token
    assert servers.seen == []


def test_get_token_refreshes_an_expired_token(servers: FakeServers) -> None:
    store = TokenStore.memory()
    first = make(servers, store).get_token()
    later = time.time() + 7200
    servers.seen.clear()
    second = make(servers, store, clock=lambda: later).get_token()
    assert second.access_token != first.access_token
    assert [s.form.get("grant_type") for s in servers.seen] == ["refresh_token"]


def test_non_interactive_provider_raises_login_required(servers: FakeServers) -> None:
    provider = make(servers, TokenStore.memory(), interactive=False)
    with pytest.raises(LoginRequiredError, match="needs a login; log in with this store"):
        provider.get_token()
    assert all(s.path != "/token" for s in servers.seen)


async def test_async_login_then_logout_revokes_both_tokens(servers: FakeServers) -> None:
    store = TokenStore.memory()
    provider = make(servers, store)
    tokens = await provider.alogin()
    result = await provider.alogout()
    assert result.revoked == ("refresh_token", "access_token")
    assert result.forgotten and result.revocation_supported and not result.errors
    assert servers.revoked == ["refresh_token", "access_token"]
    assert tokens.access_token not in servers.access
    record = await store.get(RESOURCE)
    assert record is not None and record.tokens is None and record.client is not None


async def test_logout_forget_client_drops_the_record(servers: FakeServers) -> None:
    store = TokenStore.memory()
    provider = make(servers, store)
    await provider.alogin()
    await provider.alogout(forget_client=True)
    assert await store.get(RESOURCE) is None


def test_dead_authorization_server_is_a_typed_error(httpx_mock: HTTPXMock) -> None:
    from mcp_client_auth import DiscoveryError

    httpx_mock.add_exception(httpx.ConnectError("connection refused"), is_reusable=True)
    provider = OAuthClientProvider(RESOURCE, store=TokenStore.memory(), login=lambda u: u)
    with pytest.raises(DiscoveryError, match="could not reach"):
        asyncio.run(provider.aget_token())
