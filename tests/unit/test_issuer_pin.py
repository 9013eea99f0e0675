"""``issuer=``: the one authorization server a provider may use, and the same rule applied on
its own to credentials the user gave (a pre-registered secret is that server's only)."""

from __future__ import annotations

import pytest

from mcp_client_auth import (
    ConfigurationError,
    DiscoveryError,
    OAuthClientProvider,
    TokenStore,
)

from .fake_servers import ISSUER, ISSUER2, RESOURCE, FakeServers
from .test_provider_flow import COMBOS, call, provider


@pytest.mark.parametrize("combo", COMBOS)
def test_the_pinned_issuer_is_chosen_among_those_listed(combo: str) -> None:
    servers = FakeServers(extra_authorization_servers=[ISSUER2])
    auth = provider(servers, issuer=ISSUER2)
    assert call(combo, servers, auth).status_code == 200
    assert servers.at(ISSUER) == []  # listed first, never contacted
    assert servers.count("/token", ISSUER2) == 1
    assert auth.record is not None and auth.record.issuer == ISSUER2


def test_without_a_pin_the_first_listed_is_used() -> None:
    servers = FakeServers(extra_authorization_servers=[ISSUER2])
    auth = provider(servers)
    assert call("httpx-sync", servers, auth).status_code == 200
    assert servers.at(ISSUER2) == [] and servers.count("/token", ISSUER) == 1


@pytest.mark.parametrize("combo", COMBOS)
def test_a_resource_naming_another_server_is_refused_before_contacting_it(combo: str) -> None:
    servers = FakeServers()
    servers.migrate()  # the resource names ISSUER2 only
    auth = provider(servers, issuer=ISSUER)
    with pytest.raises(DiscoveryError) as info:
        call(combo, servers, auth)
    message = str(info.value)
    assert ISSUER2 in message and ISSUER in message and "issuer=" in message
    assert servers.at(ISSUER2) == [] and servers.at(ISSUER) == []


def test_a_client_secret_never_follows_the_resource_to_another_server() -> None:
    """No issuer= given: a pre-registered secret stays with the server it was first used at,
    when the resource moves to another (the migration a hostile resource could fake)."""
    servers = FakeServers()
    store = TokenStore.memory()
    redirect = "http://127.0.0.1:8765/callback"
    servers.clients["pre-registered"] = {
        "issuer": ISSUER,
        "client_secret": "s3cret-pre",
        "redirect_uris": [redirect],
    }
    auth = provider(
        servers,
        store,
        client_id="pre-registered",
        client_secret="s3cret-pre",
        redirect_uri=redirect,
    )
    assert call("httpx2-async", servers, auth).status_code == 200
    assert servers.count("/token", ISSUER) == 1
    servers.migrate()
    with pytest.raises(DiscoveryError, match="credentials were first used with"):
        call("httpx2-async", servers, auth)
    assert servers.at(ISSUER2) == []  # not even its metadata was asked for
    # at the old server: one refresh (it issued the tokens), and no second login
    grants = [s.form["grant_type"] for s in servers.at(ISSUER) if s.path == "/token"]
    assert grants == ["authorization_code", "refresh_token"]


def test_the_same_move_is_followed_for_a_registered_client() -> None:
    """The control: a dynamically registered client follows the resource (a new registration
    at the new server, nothing of the old one sent there)."""
    servers = FakeServers()
    store = TokenStore.memory()
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    servers.migrate()
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    assert servers.count("/token", ISSUER2) == 1


@pytest.mark.parametrize("bad", ["http://auth.example.com", "auth.example.com", ""])
def test_an_unusable_issuer_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="issuer="):
        OAuthClientProvider(RESOURCE, issuer=bad, store=TokenStore.memory())
