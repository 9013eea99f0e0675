"""The grants without a person: the JWT bearer grant (workload identity), the ID-JAG token
exchange (enterprise-managed authorization), client credentials with DPoP; and the 2026-07-28
rules for the login (step-up scope union, application_type)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import (
    ClientCredentials,
    ConfigurationError,
    IdentityAssertion,
    IdJagExchange,
    TokenError,
    TokenStore,
)
from mcp_client_auth.flow import JWT_BEARER_GRANT

from .fake_servers import (
    ID_JAG,
    ID_TOKEN,
    IDP,
    ISSUER,
    JWT_BEARER,
    RESOURCE,
    TOKEN_EXCHANGE,
    FakeServers,
)
from .test_provider_flow import COMBOS, call, own_transport, provider

# -- workload identity: the JWT bearer grant with the platform's token ------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_workload_identity_jwt_bearer_grant(combo: str) -> None:
    servers = FakeServers(valid_assertion="workload-jwt")
    auth = IdentityAssertion(
        RESOURCE,
        client_id="wif-client",
        assertion="workload-jwt",
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert call(combo, servers, auth).status_code == 200
    [token] = [s for s in servers.seen if s.path == "/token"]
    assert token.form["grant_type"] == JWT_BEARER == JWT_BEARER_GRANT
    assert token.form["assertion"] == "workload-jwt"
    assert token.form["resource"] == RESOURCE
    assert token.form["client_id"] == "wif-client"
    assert servers.count("/authorize") == 0 and servers.count("/register") == 0


@pytest.mark.parametrize("combo", COMBOS)
def test_refused_assertion_no_retry_and_no_other_grant(combo: str) -> None:
    servers = FakeServers(valid_assertion="the-right-one")
    auth = IdentityAssertion(
        RESOURCE,
        assertion="expired-jwt",
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    with pytest.raises(TokenError, match="invalid_grant"):
        call(combo, servers, auth)
    assert [s.form["grant_type"] for s in servers.seen if s.path == "/token"] == [JWT_BEARER]
    assert servers.count("/register") == 0


def test_assertion_callable_gets_the_issuer_and_resource() -> None:
    servers = FakeServers(valid_assertion="jwt-for-as")
    asked: list[tuple[str, str]] = []

    async def assertion(audience: str, resource: str) -> str:
        asked.append((audience, resource))
        return "jwt-for-as"

    auth = IdentityAssertion(
        RESOURCE, assertion=assertion, store=TokenStore.memory(), transport=own_transport(servers)
    )
    assert call("httpx2-async", servers, auth).status_code == 200
    assert asked == [(ISSUER, RESOURCE)]


# -- enterprise-managed authorization: ID token -> ID-JAG (RFC 8693) -> JWT bearer grant -------


def enterprise(servers: FakeServers, **kwargs: Any) -> IdentityAssertion:
    exchange = IdJagExchange(
        f"{IDP}/token",
        id_token=kwargs.pop("id_token", servers.id_token),
        client_id="idp-client",
        client_secret=kwargs.pop("idp_secret", None),
    )
    return IdentityAssertion(
        RESOURCE,
        client_id="mcp-client",
        client_secret="mcp-secret",
        assertion=exchange,
        store=TokenStore.memory(),
        **kwargs,
        transport=own_transport(servers),
    )


@pytest.mark.parametrize("combo", COMBOS)
def test_id_jag_exchange_then_jwt_bearer_grant(combo: str) -> None:
    servers = FakeServers()
    assert call(combo, servers, enterprise(servers)).status_code == 200
    [exchange] = [s for s in servers.seen if s.url == f"{IDP}/token"]
    assert exchange.form == {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ID_JAG,
        "subject_token": servers.id_token,
        "subject_token_type": ID_TOKEN,
        "audience": ISSUER,
        "resource": RESOURCE,
        "scope": "read write",
        "client_id": "idp-client",
    }
    [grant] = [s for s in servers.seen if s.url == f"{ISSUER}/token"]
    assert grant.form["grant_type"] == JWT_BEARER
    assert grant.form["assertion"] in servers.id_jags
    assert grant.headers["authorization"].startswith("Basic ")  # the MCP client's secret
    # the IdP's id token never goes to the MCP authorization server
    assert servers.id_token not in grant.body.decode()


def test_id_token_source_is_asked_at_every_exchange_and_idp_basic_auth() -> None:
    servers = FakeServers(reported_ttl=0, issue_refresh=False)  # expired: a new grant each time
    calls = 0

    async def id_token() -> str:
        nonlocal calls
        calls += 1
        return servers.id_token

    auth = enterprise(servers, id_token=id_token, idp_secret="idp-secret")
    assert call("httpx2-async", servers, auth).status_code == 200
    assert call("httpx2-async", servers, auth).status_code == 200
    exchanges = [s for s in servers.seen if s.url == f"{IDP}/token"]
    assert calls == len(exchanges) == 2
    assert all(s.headers["authorization"].startswith("Basic ") for s in exchanges)
    assert all("client_secret" not in s.form for s in exchanges)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ({"idp_error": "invalid_grant"}, "refused the ID-JAG token exchange"),
        (
            {"idp_issued_token_type": "urn:ietf:params:oauth:token-type:access_token"},
            "not an ID-JAG",
        ),
    ],
)
def test_id_jag_exchange_failures_stop_before_the_authorization_server(
    setup: dict[str, Any], match: str
) -> None:
    servers = FakeServers(**setup)
    with pytest.raises(TokenError, match=match):
        call("httpx-sync", servers, enterprise(servers))
    assert servers.count("/token", ISSUER) == 0


def test_id_jag_exchange_refuses_plain_http_and_missing_client() -> None:
    with pytest.raises(Exception, match="https"):
        IdJagExchange("http://idp.example.com/token", id_token="t", client_id="c")
    with pytest.raises(ConfigurationError, match="client_id"):
        IdJagExchange(f"{IDP}/token", id_token="t", client_id="")
    exchange = IdJagExchange(
        f"{IDP}/token", id_token="eyJ-secret", client_id="c", client_secret="s3"
    )
    assert "eyJ-secret" not in repr(exchange) and "s3" not in repr(exchange)


def test_id_jag_exchange_without_a_request() -> None:
    servers = FakeServers()
    tokens = enterprise(servers).get_token()
    assert tokens.access_token in servers.access
    assert servers.count("/token", IDP) == 1


# -- client credentials with DPoP ------------------------------------------------------------


def test_client_credentials_token_request_carries_a_dpop_proof(httpx_mock: HTTPXMock) -> None:
    servers = FakeServers(dpop_algs=["ES256"], prm_dpop_algs=["ES256"])

    def token(request: Any) -> Any:
        seen = servers.handler(request)
        return seen

    httpx_mock.add_callback(token, is_reusable=True)
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        client_secret="s3cret",
        store=TokenStore.memory(),
    )

    # the fake AS does not implement client_credentials: check the request, not the answer
    with pytest.raises(TokenError, match="unsupported_grant_type"):
        asyncio.run(auth.aget_token())
    [request] = [s for s in servers.seen if s.path == "/token"]
    assert request.form["grant_type"] == "client_credentials"
    assert "dpop" in request.headers and servers.proofs[-1]["htm"] == "POST"


# -- protocol 2026-07-28: step-up scope union, application_type --------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_step_up_authorization_request_keeps_the_granted_scopes(combo: str) -> None:
    servers = FakeServers(scopes_supported=["read", "write", "admin"])
    scopes: list[set[str]] = []

    def login(url: str) -> str:
        scopes.append(set(parse_qs(urlsplit(url).query)["scope"][0].split()))
        return servers.approve(url)

    auth = provider(servers, scopes=None, login=login)
    servers.scopes_supported = ["read"]  # the first login asks for "read" only
    assert call(combo, servers, auth).status_code == 200
    servers.required_scope = "admin"
    assert call(combo, servers, auth).status_code == 200
    assert scopes[0] == {"read"}
    assert scopes[1] >= {"read", "admin"}  # the union, not the challenged scope alone


def test_dynamic_registration_sends_application_type() -> None:
    servers = FakeServers()
    assert call("httpx2-sync", servers, provider(servers, combo="httpx2-sync")).status_code == 200
    [client] = servers.clients.values()
    assert client["application_type"] == "native"
    assert client["grant_types"] == ["authorization_code", "refresh_token"]


@pytest.mark.parametrize("combo", COMBOS)
def test_step_up_registers_again_where_the_registration_limits_scopes(combo: str) -> None:
    """oidc-provider lets a dynamically registered client ask only for its registered scope."""
    servers = FakeServers(scopes_supported=["read"], registered_scope_limits=True)
    auth = provider(servers, scopes=None)
    assert call(combo, servers, auth).status_code == 200
    servers.scopes_supported = ["read", "write", "admin"]
    servers.required_scope = "admin"
    response = call(combo, servers, auth)
    assert response.status_code == 200 and "admin" in response.json()["scope"].split()
    registrations = [c["scope"].split() for c in servers.clients.values()]
    assert len(registrations) == 2 and {"read", "admin"} <= set(registrations[1])
    servers.seen.clear()
    assert call(combo, servers, auth).status_code == 200  # and the new one is kept
    assert servers.count("/register") == 0


@pytest.mark.parametrize("combo", COMBOS)
def test_step_up_widens_the_registration_keeping_the_client_id(combo: str) -> None:
    """RFC 7592: the mcp SDK's servers bind a session to the client_id, so keep it."""
    servers = FakeServers(
        scopes_supported=["read"], registered_scope_limits=True, registration_management=True
    )
    auth = provider(servers, scopes=None)
    assert call(combo, servers, auth).status_code == 200
    [client_id] = servers.clients
    servers.scopes_supported = ["read", "write", "admin"]
    servers.required_scope = "admin"
    assert call(combo, servers, auth).status_code == 200
    assert list(servers.clients) == [client_id]  # no second registration
    assert set(servers.clients[client_id]["scope"].split()) >= {"read", "admin"}
    [update] = [s for s in servers.seen if s.method == "PUT"]
    assert update.headers["authorization"].startswith("Bearer rat-")
    assert {g["client_id"] for g in servers.access.values()} == {client_id}
    assert auth.record is not None and auth.record.client is not None
    assert auth.record.client.client_id == client_id
    assert "admin" in (auth.record.client.scope or "").split()


def test_refused_registration_update_registers_a_new_client() -> None:
    servers = FakeServers(
        scopes_supported=["read"], registered_scope_limits=True, registration_management=True
    )
    auth = provider(servers, scopes=None)
    assert call("httpx2-async", servers, auth).status_code == 200
    for client in servers.clients.values():
        client["rat"] = "revoked"  # the update is refused (401)
    servers.scopes_supported = ["read", "admin"]
    servers.required_scope = "admin"
    assert call("httpx2-async", servers, auth).status_code == 200
    assert len(servers.clients) == 2
