"""A loopback port the user fixes wins over a stored client's redirect URI.

Why: ``ssh -L 8765:127.0.0.1:8765`` with ``redirect_port=8765`` (or ``BrowserLogin(port=8765)``,
or ``mcp-client-auth login --port 8765``) only works if the login listens on 8765; a client
stored from an earlier login on a free port must not pull the listener back to its old port.
The client is moved to the new redirect URI: by an RFC 7592 update (same client_id) where the
authorization server offers one, else by a new registration. The fake authorization server
refuses an authorization request whose redirect URI its client was not registered for, so a
login that succeeds proves the registration followed the port.
"""

from __future__ import annotations

import io
import random
import socket
import urllib.request
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import BrowserLogin, TokenStore

from .fake_servers import FakeServers
from .test_provider_flow import provider


def fake(httpx_mock: HTTPXMock, **options: Any) -> FakeServers:
    servers = FakeServers(**options)
    httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)
    return servers


def unused_fixed_port() -> int:
    """A port below Linux's ephemeral range (32768+), free now: a port a user would fix, which
    no bind(0) or outgoing connection elsewhere can be handed meanwhile."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def test_redirect_port_moves_the_stored_client_keeping_its_id(httpx_mock: HTTPXMock) -> None:
    servers = fake(httpx_mock, registration_management=True)
    store = TokenStore.memory()
    provider(servers, store).login()
    [client_id] = servers.clients
    before = servers.clients[client_id]["redirect_uris"]

    moved = provider(servers, store, redirect_port=8765)
    moved.login()
    assert list(servers.clients) == [client_id]  # updated, not registered again
    assert servers.clients[client_id]["redirect_uris"] == ["http://127.0.0.1:8765/callback"]
    assert before != ["http://127.0.0.1:8765/callback"]
    assert moved.record is not None and moved.record.client is not None
    assert moved.record.client.client_id == client_id
    assert moved.record.client.redirect_uris == ("http://127.0.0.1:8765/callback",)


def test_without_registration_updates_a_fixed_port_registers_a_new_client(
    httpx_mock: HTTPXMock,
) -> None:
    servers = fake(httpx_mock)
    store = TokenStore.memory()
    provider(servers, store).login()
    provider(servers, store, redirect_port=8765).login()
    assert len(servers.clients) == 2
    newest = list(servers.clients.values())[-1]
    assert newest["redirect_uris"] == ["http://127.0.0.1:8765/callback"]
    again = provider(servers, store, redirect_port=8765)
    again.login()  # the same port again: the moved client is reused as it is
    assert len(servers.clients) == 2


def test_the_same_port_as_stored_keeps_the_client_untouched(httpx_mock: HTTPXMock) -> None:
    servers = fake(httpx_mock, registration_management=True)
    store = TokenStore.memory()
    provider(servers, store, redirect_port=8765).login()
    provider(servers, store, redirect_port=8765).login()
    assert len(servers.clients) == 1
    assert not [s for s in servers.seen if s.method == "PUT"]


@pytest.mark.timeout(60)
def test_browser_login_port_wins_over_the_stored_redirect_uri(httpx_mock: HTTPXMock) -> None:
    """BrowserLogin(port=) on its own (no redirect_port=): it listens on that port, and the
    browser's answer reaches it there."""
    servers = fake(httpx_mock, registration_management=True)
    store = TokenStore.memory()
    provider(servers, store).login()
    port = unused_fixed_port()

    def browser(url: str) -> bool:  # approve, then follow the redirect to the listener
        with urllib.request.urlopen(servers.approve(url), timeout=20) as answer:
            answer.read()
        return True

    login = BrowserLogin(port=port, opener=browser, output=io.StringIO())
    moved = provider(servers, store, login=login)
    moved.login()
    assert moved.record is not None and moved.record.client is not None
    assert moved.record.client.redirect_uris == (f"http://127.0.0.1:{port}/callback",)
