"""Issuer binding: authorization-server migration, RFC 9207 iss checks, RFC 8414 issuer match."""

from __future__ import annotations

import asyncio

import pytest

from mcp_client_auth import AuthorizationError, DiscoveryError, TokenStore

from .fake_servers import ISSUER, ISSUER2, RESOURCE, FakeServers
from .test_provider_flow import COMBOS, call, provider

# -- authorization-server migration ------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("dpop", [False, True])
def test_migration_re_reads_metadata_and_sends_nothing_from_the_old_server(
    combo: str, dpop: bool
) -> None:
    servers = FakeServers(dpop_algs=["ES256"] if dpop else None)
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert call(combo, servers, auth).status_code == 200
    old = asyncio.run(store.get(RESOURCE))
    assert old is not None and old.issuer == ISSUER
    assert old.client is not None and old.tokens is not None and old.tokens.refresh_token
    servers.migrate()
    servers.seen.clear()
    response = call(combo, servers, auth)
    assert response.status_code == 200 and response.json()["issuer"] == ISSUER2
    # the 401 re-read the resource's metadata, then went to the new server only
    paths = [(s.origin, s.path) for s in servers.seen]
    assert paths[0] == ("https://mcp.example.com", "/mcp")
    assert paths[1] == ("https://mcp.example.com", "/.well-known/oauth-protected-resource/mcp")
    assert servers.at(ISSUER) == []  # no refresh at the old server either
    assert servers.count("/register", ISSUER2) == 1
    secrets = {old.client.client_id, old.tokens.access_token, old.tokens.refresh_token}
    for seen in servers.at(ISSUER2):
        sent = seen.url + seen.body.decode() + str(seen.headers)
        assert not any(secret in sent for secret in secrets), seen
    new = asyncio.run(store.get(RESOURCE))
    assert new is not None and new.issuer == ISSUER2
    assert new.client is not None and new.client.issuer == ISSUER2
    if dpop:  # a fresh key for the new server: the two cannot link the client
        assert old.dpop_key is not None and new.dpop_key is not None
        assert new.dpop_key != old.dpop_key
        assert servers.proofs[-1]["jkt"] == new.dpop_key.thumbprint


def test_a_401_from_the_same_server_refreshes_after_re_reading_metadata() -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert call("httpx2-async", servers, auth).status_code == 200
    servers.access.clear()  # the server forgot the access token (revoked, restarted)
    servers.seen.clear()
    assert call("httpx2-async", servers, auth).status_code == 200
    assert [s.path for s in servers.seen] == [
        "/mcp",
        "/.well-known/oauth-protected-resource/mcp",  # still names the same server
        "/token",
        "/mcp",
    ]
    assert servers.seen[2].form["grant_type"] == "refresh_token"


@pytest.mark.parametrize("status", [404, 500])
def test_unreadable_metadata_after_a_401_is_no_migration(status: int) -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert call("httpx-async", servers, auth).status_code == 200
    servers.access.clear()
    servers.prm_status = status  # the metadata is gone (404) or the server is failing (500)
    servers.seen.clear()
    assert call("httpx-async", servers, auth).status_code == 200
    # no move to the resource's origin as a 2025-03-26 server: the old server refreshes
    assert [s.form["grant_type"] for s in servers.seen if s.path == "/token"] == ["refresh_token"]
    assert all(
        s.origin != "https://mcp.example.com" or "oauth-authorization" not in s.path
        for s in servers.seen
    )
    record = asyncio.run(store.get(RESOURCE))
    assert record is not None and record.issuer == ISSUER


def test_a_new_process_after_migration_uses_the_stored_new_issuer() -> None:
    servers = FakeServers()
    store = TokenStore.memory()
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    servers.migrate()
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    servers.seen.clear()
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    assert [s.path for s in servers.seen] == ["/mcp"]


# -- RFC 9207: the iss of the authorization response ---------------------------------------


@pytest.mark.parametrize(
    ("advertised", "mode", "accepted"),
    [
        (True, "correct", True),  # iss-supported
        (None, "missing", True),  # iss-not-advertised
        (False, "missing", True),
        (True, "missing", False),  # iss-supported-missing
        (True, "wrong", False),  # iss-wrong-issuer
        (None, "wrong", False),  # iss-unexpected: compared even when not advertised
        (True, "normalized", False),  # iss-normalized: exact string comparison
        (None, "normalized", False),
    ],
)
def test_iss_checks_stop_before_the_token_request(
    advertised: bool | None, mode: str, accepted: bool
) -> None:
    servers = FakeServers(iss_supported=advertised, iss_mode=mode)
    auth = provider(servers)
    if accepted:
        assert call("httpx2-async", servers, auth).status_code == 200
        assert servers.count("/token") == 1
        return
    with pytest.raises(AuthorizationError, match="RFC 9207"):
        call("httpx2-async", servers, auth)
    assert servers.count("/token") == 0
    assert auth.tokens is None


# -- RFC 8414 3.3: the metadata's issuer ------------------------------------------------------


@pytest.mark.parametrize("wrong", ["https://attacker.example.com", f"{ISSUER}/"])
def test_metadata_with_another_issuer_is_refused_before_anything_is_sent(wrong: str) -> None:
    servers = FakeServers(metadata_issuer=wrong)
    auth = provider(servers)
    with pytest.raises(DiscoveryError, match="RFC 8414"):
        call("httpx-async", servers, auth)
    assert servers.count("/register") == 0
    assert servers.count("/token") == 0
    assert servers.codes == {}
    # and no other metadata URL is tried as a fallback
    assert servers.count("/.well-known/openid-configuration") == 0
