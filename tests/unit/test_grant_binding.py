"""Credentials the user gave stay with the authorization server they were first used with, an
identity assertion as much as a secret; a provider without a client_id stores a record it can
read back; revocation authenticates as the token request does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_client_auth import (
    ClientCredentials,
    ClientRegistration,
    DiscoveryError,
    IdentityAssertion,
    IdJagExchange,
    ServerRecord,
    StorageError,
    TokenError,
    TokenStore,
)
from mcp_client_auth.store import keys

from .fake_servers import IDP, ISSUER, ISSUER2, RESOURCE, FakeServers
from .test_provider_flow import COMBOS, call, own_transport

ASSERTION = "workload-jwt"
SOURCES = ["fixed", "callable", "id-jag"]


def identity_assertion(
    source: str, servers: FakeServers, store: TokenStore, **kwargs: Any
) -> IdentityAssertion:
    assertion: Any
    if source == "fixed":
        assertion = ASSERTION
    elif source == "callable":

        async def assertion(audience: str, resource: str) -> str:
            return ASSERTION

    else:
        assertion = IdJagExchange(f"{IDP}/token", id_token=servers.id_token, client_id="idp-app")
    return IdentityAssertion(
        RESOURCE, assertion=assertion, store=store, **kwargs, transport=own_transport(servers)
    )


def nothing_for_the_new_server(servers: FakeServers) -> None:
    assert servers.at(ISSUER2) == []  # not even its metadata was asked for
    assert all(jag["aud"] != ISSUER2 for jag in servers.id_jags.values())  # no ID-JAG minted


# -- the assertion is bound to the first authorization server --------------------------------


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("source", SOURCES)
def test_an_identity_assertion_never_follows_the_resource_to_another_server(
    combo: str, source: str
) -> None:
    servers = FakeServers(valid_assertion=ASSERTION)
    store = TokenStore.memory()
    auth = identity_assertion(source, servers, store, client_id="wif-client")
    assert call(combo, servers, auth).status_code == 200
    assert servers.count("/token", ISSUER) == 1
    servers.migrate()  # the resource now names ISSUER2 (what a hostile resource would fake)
    with pytest.raises(DiscoveryError, match="credentials were first used with"):
        call(combo, servers, auth)
    nothing_for_the_new_server(servers)
    # a new process on the same store refuses the same way
    again = identity_assertion(source, servers, store, client_id="wif-client")
    with pytest.raises(DiscoveryError, match="credentials were first used with"):
        call(combo, servers, again)
    nothing_for_the_new_server(servers)


@pytest.mark.parametrize("source", SOURCES)
def test_the_binding_holds_when_the_first_grant_was_refused(source: str) -> None:
    """The assertion went to ISSUER once, refused: it is that server's all the same."""
    servers = FakeServers(valid_assertion="another-one")
    store = TokenStore.memory()
    if source == "id-jag":
        servers.idp_error = "invalid_grant"  # the IdP refuses: nothing reached ISSUER's /token
    with pytest.raises(TokenError):
        call("httpx-sync", servers, identity_assertion(source, servers, store))
    servers.migrate()
    servers.idp_error = None
    servers.valid_assertion = ASSERTION
    with pytest.raises(DiscoveryError, match="credentials were first used with"):
        call("httpx-sync", servers, identity_assertion(source, servers, store))
    nothing_for_the_new_server(servers)


def test_a_client_secret_is_bound_the_same_way_without_a_login() -> None:
    """ClientCredentials, the rule the assertion now shares."""
    servers = FakeServers(valid_assertion=ASSERTION)
    store = TokenStore.memory()
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        client_secret="s3cret",
        store=store,
        transport=own_transport(servers),
    )
    with pytest.raises(TokenError):  # the fake server has no client_credentials grant
        call("httpx2-async", servers, auth)
    servers.migrate()
    with pytest.raises(DiscoveryError, match="credentials were first used with"):
        call("httpx2-async", servers, auth)
    assert servers.at(ISSUER2) == []


def test_issuer_pins_the_assertion_to_the_server_the_user_names() -> None:
    servers = FakeServers(valid_assertion=ASSERTION, extra_authorization_servers=[ISSUER2])
    auth = identity_assertion("fixed", servers, TokenStore.memory(), issuer=ISSUER2)
    assert call("httpx-async", servers, auth).status_code == 200
    assert servers.at(ISSUER) == [] and servers.count("/token", ISSUER2) == 1


# -- without a client_id, a record that reads back --------------------------------------------


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("HOME", str(tmp_path))
    keys.forget_keys()
    yield tmp_path / "store"
    keys.forget_keys()


@pytest.mark.parametrize("combo", COMBOS)
def test_without_a_client_id_the_next_process_reuses_the_stored_token(
    combo: str, disk: Path
) -> None:
    servers = FakeServers(valid_assertion=ASSERTION)
    first = identity_assertion("fixed", servers, TokenStore.default(disk))
    assert call(combo, servers, first).status_code == 200
    grant = [s for s in servers.seen if s.path == "/token"]
    assert len(grant) == 1 and "client_id" not in grant[0].form  # no empty client_id= either
    servers.seen.clear()
    # the next process: its own store object over the same folder, its own provider
    keys.forget_keys()
    store = TokenStore.default(disk)
    second = identity_assertion("fixed", servers, store)
    assert call(combo, servers, second).status_code == 200
    assert [s.path for s in servers.seen] == ["/mcp"]  # the stored token, no second grant
    assert store.unreadable_files() == []  # nothing set aside, no stray copy of a live token
    record = asyncio.run(store.get(RESOURCE))
    assert record is not None and record.client is not None and record.client.client_id == ""


def test_a_record_that_would_not_read_back_is_never_written(disk: Path) -> None:
    store = TokenStore.default(disk)
    broken = ServerRecord(
        resource=RESOURCE, client=replace(ClientRegistration("x", kind="dynamic"), client_id="")
    )
    with pytest.raises(StorageError, match="could not be read back"):
        asyncio.run(store.put(broken))
    assert asyncio.run(store.get(RESOURCE)) is None and store.unreadable_files() == []


# -- revocation authenticates like the token request -------------------------------------------


def test_logout_of_a_private_key_jwt_client_sends_a_fresh_client_assertion() -> None:
    """The fake /revoke records what it got; each revocation carries its own assertion, signed
    by the key, for the authorization server. (Against the real server:
    tests/integration/test_private_key_jwt_realas.py.)"""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    servers = FakeServers(valid_assertion=ASSERTION)
    store = TokenStore.memory()
    auth = IdentityAssertion(
        RESOURCE,
        assertion=ASSERTION,
        client_id="wif",
        store=store,
        transport=own_transport(servers),
    )
    assert call("httpx-sync", servers, auth).status_code == 200
    # the same record, as a private_key_jwt client's (the fake issues it a refresh token)
    signer = ClientCredentials(
        RESOURCE,
        client_id="wif",
        private_key=pem,
        signing_algorithm="ES256",
        store=store,
        transport=own_transport(servers),
    )
    record = asyncio.run(store.get(RESOURCE))
    assert record is not None and record.client is not None
    client = replace(record.client, token_endpoint_auth_method="private_key_jwt")
    asyncio.run(store.put(replace(record, client=client)))
    servers.seen.clear()
    result = signer.logout()
    revocations = [s for s in servers.seen if s.path == "/revoke"]
    assert len(revocations) == 2 and result.revoked == ("refresh_token", "access_token")
    public = key.public_key()
    jtis = set()
    for seen in revocations:
        form = seen.form
        assert form["client_assertion_type"].endswith("client-assertion-type:jwt-bearer")
        claims = jwt.decode(form["client_assertion"], public, algorithms=["ES256"], audience=ISSUER)
        assert claims["iss"] == claims["sub"] == "wif"
        jtis.add(claims["jti"])
    assert len(jtis) == 2  # each request signs anew
