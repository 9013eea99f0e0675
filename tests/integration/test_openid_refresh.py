"""A refresh token from an OpenID provider in its default policy, and no ``prompt`` elsewhere.

oidc-provider, set up as it comes (an issuer with a path, opaque access tokens checked by
introspection, no RFC 7592, its own scope list, and its own refresh-token policy: a refresh
token only for ``offline_access``, which it grants only with ``prompt=consent``, OpenID Connect
Core 1.0 section 11): the login asks for ``offline_access`` with ``prompt=consent``, gets a
refresh token, and the expired access token is refreshed. The demo authorization server is
plain OAuth (it lists ``offline_access`` but not ``openid``): it is never sent ``prompt``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from examples.demo_servers import start_demo_servers
from mcp_client_auth import OAuthClientProvider, TokenStore

if TYPE_CHECKING:
    from tests.conftest import StartRealAS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


class Clock:
    """The provider's clock, moved on by the test: an expiry without waiting for one."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def recording(login: Callable[[str], str], queries: list[dict[str, str]]) -> Callable[[str], str]:
    def run(url: str) -> str:
        queries.append({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
        return login(url)

    return run


def test_default_oidc_provider_issues_a_refresh_token_and_it_refreshes(
    start_realas: StartRealAS, realas_login: Callable[[str], str]
) -> None:
    stack = start_realas(
        ISSUER_PATH="/oidc",
        AT_FORMAT="opaque",
        RS_VALIDATION="introspect",
        ALWAYS_ISSUE_RT="0",
        REGISTRATION_MANAGEMENT="0",
        STATIC_RS_SCOPES="0",  # its own scope list: openid, offline_access
        AT_TTL="300",
        AS_LOG_EVENTS="1",
    )
    assert stack.issuer.endswith("/oidc")
    queries: list[dict[str, str]] = []
    clock = Clock()
    auth = OAuthClientProvider(
        stack.resource,
        store=TokenStore.memory(),
        login=recording(realas_login, queries),
        clock=clock,
    )
    with httpx.Client(auth=auth, timeout=30) as client:
        assert client.post(stack.resource, json=PING).status_code == 200
        [query] = queries
        assert "offline_access" in query["scope"].split()
        assert query["prompt"] == "consent"
        first = auth.tokens
        assert first is not None and first.refresh_token, "no refresh token was issued"
        assert first.expires_at is not None

        clock.offset = first.expires_at - clock() + 1  # the access token counts as expired
        assert client.post(stack.resource, json=PING).status_code == 200
    assert len(queries) == 1  # no second login
    refreshed = auth.tokens
    assert refreshed is not None and refreshed.access_token != first.access_token
    grants = [e.get("grant_type") for e in stack.events() if e["event"] == "grant.success"]
    assert grants == ["authorization_code", "refresh_token"]


def test_a_plain_oauth_server_is_not_sent_prompt() -> None:
    """The demo server lists offline_access, not openid: no prompt, and a refresh token all the
    same (it gives one to every client registered for the refresh_token grant)."""
    queries: list[dict[str, str]] = []
    with start_demo_servers() as demo:

        def approve(url: str) -> str:
            queries.append({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
            response = httpx.get(url, follow_redirects=False, timeout=10)
            return str(response.headers["location"])

        auth = OAuthClientProvider(demo.mcp_url, store=TokenStore.memory(), login=approve)
        token = auth.get_token()
    [query] = queries
    assert "offline_access" in query["scope"].split()
    assert "prompt" not in query
    assert token.refresh_token
