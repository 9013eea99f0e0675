"""Step-up keeps the client_id (servers bind MCP sessions to it), and the login follows OpenID
Connect's rule for ``offline_access`` only where the server is an OpenID provider."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .fake_servers import ISSUER, FakeServers, Seen
from .test_device_polling import Clock, RecordingDeviceLogin
from .test_login_fallback import DEVICE_ENDPOINT, DEVICE_GRANT, DeviceServers
from .test_provider_flow import COMBOS, call, provider


class Recorder:
    """A login that records each authorization request's query, then approves it."""

    def __init__(self, servers: FakeServers) -> None:
        self.servers = servers
        self.queries: list[dict[str, str]] = []

    def __call__(self, url: str) -> str:
        self.queries.append({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
        return self.servers.approve(url)


def step_up_to_admin(combo: str, servers: FakeServers) -> Recorder:
    """A login with the metadata's scope, then a step-up to ``admin``; the logins' queries."""
    login = Recorder(servers)
    auth = provider(servers, scopes=None, login=login, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    servers.required_scope = "admin"
    response = call(combo, servers, auth)
    assert response.status_code == 200 and "admin" in response.json()["scope"].split()
    return login


@pytest.mark.parametrize("combo", COMBOS)
def test_step_up_asks_with_the_stored_client_where_the_server_allows_it(combo: str) -> None:
    """No registration management, a scope nobody advertised: the same client asks for more."""
    servers = FakeServers(scopes_supported=["read"])
    login = step_up_to_admin(combo, servers)
    assert servers.count("/register") == 1
    [client_id] = servers.clients
    assert [q["client_id"] for q in login.queries] == [client_id, client_id]
    assert "admin" in login.queries[1]["scope"].split()


@pytest.mark.parametrize("combo", COMBOS)
def test_first_registration_covers_what_the_server_advertises(combo: str) -> None:
    """A server that holds a client to its registered scope (oidc-provider, the mcp SDK's): the
    first registration already covers an advertised scope a later step-up asks for."""
    servers = FakeServers(scopes_supported=["read", "write", "admin"], registered_scope_limits=True)
    auth = provider(servers, scopes=["read"], combo=combo)
    assert call(combo, servers, auth).status_code == 200
    [client] = servers.clients.values()
    assert set(client["scope"].split()) == {"read", "write", "admin"}
    servers.required_scope = "admin"
    assert call(combo, servers, auth).status_code == 200
    assert servers.count("/register") == 1


@pytest.mark.parametrize("combo", COMBOS)
def test_refused_wider_scope_registers_once_more_and_logs_in_again(combo: str) -> None:
    """The one case for a new client_id: the server refuses the stored client the scope
    (invalid_scope) and offers no registration management."""
    servers = FakeServers(scopes_supported=["read"], registered_scope_limits=True)
    login = step_up_to_admin(combo, servers)
    first, second = servers.clients
    assert [q["client_id"] for q in login.queries] == [first, first, second]
    assert "admin" in servers.clients[second]["scope"].split()


def test_a_login_without_scope_registers_for_none() -> None:
    """A server may grant a request without scope all the client registered for: so a login
    that asks for none does not register for what the server advertises."""
    servers = MetadataServers(as_extra={"scopes_supported": ["read", "admin"]}, scopes_supported=[])
    login = Recorder(servers)
    assert (
        call(
            "httpx2-sync", servers, provider(servers, login=login, combo="httpx2-sync")
        ).status_code
        == 200
    )
    [client] = servers.clients.values()
    assert "scope" not in client and "scope" not in login.queries[0]


class PickyRegistration(FakeServers):
    """Refuses to register a client for ``refused_scope`` (invalid_client_metadata), as a
    server may for a scope it advertises but gives only to clients it approved."""

    def __init__(self, refused_scope: str = "admin", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refused_scope = refused_scope
        self.refused: list[str] = []

    def handler(self, request: Any) -> Any:
        if request.url.path == "/register":
            body = json.loads(request.read())
            if self.refused_scope in body.get("scope", "").split():
                self.refused.append(body["scope"])
                module = __import__(type(request).__module__.split(".")[0])
                return module.Response(
                    400,
                    json={"error": "invalid_client_metadata", "error_description": "no admin"},
                )
        return super().handler(request)


@pytest.mark.parametrize("combo", COMBOS)
def test_registration_refused_for_advertised_scopes_registers_for_the_login_scope(
    combo: str,
) -> None:
    servers = PickyRegistration(scopes_supported=["read", "admin"])
    auth = provider(servers, scopes=["read"], combo=combo)
    assert call(combo, servers, auth).status_code == 200
    [client] = servers.clients.values()
    assert client["scope"] == "read"
    assert servers.refused == ["read admin"]  # asked first, refused: the login scope then
    assert servers.count("/register") == 1


def test_registration_refused_for_any_of_the_scopes_registers_without_one() -> None:
    """As oidc-provider does with its own scope list: a resource's scope is never registered."""
    servers = PickyRegistration(refused_scope="read", scopes_supported=["read", "admin"])
    auth = provider(servers, scopes=["read"])
    assert call("httpx2-sync", servers, auth).status_code == 200
    [client] = servers.clients.values()
    assert "scope" not in client
    assert servers.refused == ["read admin", "read"]
    assert auth.record is not None and auth.record.client is not None
    assert auth.record.client.scope is None  # so a step-up asks with this client


# -- OpenID Connect: offline_access with prompt=consent (Core 1.0 section 11) -------------------


@pytest.mark.parametrize(
    ("as_extra", "prompt"),
    [
        ({"scopes_supported": ["openid", "offline_access", "read"]}, "consent"),
        (
            {
                "scopes_supported": ["offline_access", "read"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            "consent",
        ),
        ({"scopes_supported": ["offline_access", "read"]}, None),  # OAuth, not OpenID
    ],
    ids=["openid scope", "id token algorithms", "plain oauth"],
)
def test_prompt_consent_only_for_offline_access_at_an_openid_provider(
    as_extra: dict[str, Any], prompt: str | None
) -> None:
    servers = MetadataServers(as_extra=as_extra, scopes_supported=as_extra["scopes_supported"])
    login = Recorder(servers)
    assert (
        call(
            "httpx2-sync", servers, provider(servers, login=login, combo="httpx2-sync")
        ).status_code
        == 200
    )
    [query] = login.queries
    assert "offline_access" in query["scope"].split()
    assert query.get("prompt") == prompt


def test_no_prompt_without_offline_access_even_at_an_openid_provider() -> None:
    servers = MetadataServers(as_extra={}, scopes_supported=["openid", "offline_access", "read"])
    login = Recorder(servers)
    auth = provider(servers, scopes=["read"], login=login)  # the user's: no offline_access
    assert call("httpx2-sync", servers, auth).status_code == 200
    [query] = login.queries
    assert query["scope"] == "read" and "prompt" not in query


class MetadataServers(FakeServers):
    """Extra members in the authorization server's metadata document."""

    def __init__(self, *, as_extra: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.as_extra = as_extra

    def handler(self, request: Any) -> Any:
        response = super().handler(request)
        if str(request.url) == f"{ISSUER}/.well-known/oauth-authorization-server":
            document = {**json.loads(response.content), **self.as_extra}
            return type(response)(200, json=document)
        return response


# -- the device grant: the same rule -------------------------------------------------------------


class ScopedDeviceServers(DeviceServers):
    """The device authorization endpoint holds a client to its registered scope, when
    ``registered_scope_limits`` is set."""

    def _authorization_server(self, issuer: str, seen: Seen, reply: Any) -> Any:
        if seen.url == DEVICE_ENDPOINT and self.registered_scope_limits:
            client = self.clients.get(seen.form.get("client_id", ""), {})
            asked = set(seen.form.get("scope", "").split())
            if not asked <= set(client.get("scope", "").split()):
                return reply(400, {"error": "invalid_scope"})
        return super()._authorization_server(issuer, seen, reply)


@pytest.mark.parametrize("limits", [False, True], ids=["asks with the client", "refused"])
def test_device_login_step_up(limits: bool) -> None:
    servers = ScopedDeviceServers(scopes_supported=["read"], registered_scope_limits=limits)
    clock = Clock()
    auth = provider(servers, scopes=None, login=RecordingDeviceLogin(clock), clock=clock)
    assert call("httpx2-async", servers, auth).status_code == 200
    servers.required_scope = "admin"
    response = call("httpx2-async", servers, auth)
    assert response.status_code == 200 and "admin" in response.json()["scope"].split()
    device_clients = [c for c in servers.clients.values() if DEVICE_GRANT in c["grant_types"]]
    assert len(device_clients) == (2 if limits else 1)
