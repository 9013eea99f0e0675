"""Each step of the flow that the conformance suite covers, through the real provider, in the
four combinations (httpx/httpx2, sync/async): the client ID metadata document, the client
authentications (client_secret_post, client_secret_basic, private_key_jwt), which scopes are
asked for, and the 2025-03-26 fallbacks (no protected resource metadata; no authorization
server metadata either). Every test asserts the exact requests sent: URLs, form fields and
headers.

``StepServers`` is the shared ``FakeServers`` with what these steps need on top: extra fields
in the authorization server's metadata, a ``scope`` in the resource's challenge, pre-registered
clients whose secret or key the token endpoint checks, the client_credentials grant, and a
2025-03-26 resource that is its own authorization server.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_client_auth import ClientCredentials, TokenError, TokenStore

from .fake_servers import ISSUER, PRM_URL, RESOURCE, FakeServers, Seen
from .test_provider_flow import COMBOS, call, own_transport, provider

LEGACY = "https://mcp.example.com"  # a 2025-03-26 server: the resource's origin is its AS
REDIRECT = "http://127.0.0.1:33418/callback"
CIMD = "https://app.example.com/oauth/client-metadata.json"
CODE_EXCHANGE = {"grant_type", "code", "redirect_uri", "code_verifier", "resource"}
AS_METADATA = f"{ISSUER}/.well-known/oauth-authorization-server"


@dataclass
class StepServers(FakeServers):
    """FakeServers, plus what the flow's steps need (see the module's docstring)."""

    as_extra: dict[str, Any] = field(default_factory=dict)  # merged into the AS metadata
    challenge_scope: str | None = None  # a scope="..." in the resource's 401 challenge
    # "metadata": no RFC 9728 document, the resource's origin publishes RFC 8414 metadata;
    # "none": no metadata at all (the 2025-03-26 default endpoints)
    legacy: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # client_id -> its secret
    public_keys: dict[str, Any] = field(default_factory=dict)  # client_id -> private_key_jwt key
    logins: list[str] = field(default_factory=list)  # every authorization URL shown

    def __post_init__(self) -> None:
        if self.legacy is not None:
            self.prm_status = 404
            self.current_issuer = LEGACY

    def preregister(
        self, client_id: str, *, secret: str | None = None, issuer: str = ISSUER
    ) -> None:
        """A client registered by hand (or a metadata document's URL) that may log in."""
        self.clients[client_id] = {"issuer": issuer, "redirect_uris": [REDIRECT]}
        if secret is not None:
            self.secrets[client_id] = secret

    def login(self, authorization_url: str) -> str:
        self.logins.append(authorization_url)
        return self.approve(authorization_url)

    def login_query(self, index: int = 0) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.logins[index]).query).items()}

    def token_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/token"]

    def urls(self) -> list[str]:
        return [s.url.split("?")[0] for s in self.seen]

    # -- the handler: FakeServers' with these additions ---------------------------------

    def handler(self, request: Any) -> Any:
        url = str(request.url)
        seen = Seen(request.method, url, dict(request.headers), request.read())
        if self._is_legacy_server(url):
            return self._legacy_server(request, seen)
        if seen.path == "/token" and url.startswith((f"{ISSUER}/", f"{LEGACY}/")):
            refused = self._check_client(request, seen)
            if refused is not None:
                return refused
            if seen.form.get("grant_type") == "client_credentials":
                return self._client_credentials(request, seen)
        return self._rewrite(request, url, super().handler(request))

    def _is_legacy_server(self, url: str) -> bool:
        """A URL the 2025-03-26 resource serves as its own authorization server."""
        return (
            self.legacy is not None
            and url.startswith(f"{LEGACY}/")
            and not url.startswith(RESOURCE)
            and "/.well-known/oauth-protected-resource" not in url
        )

    def _legacy_server(self, request: Any, seen: Seen) -> Any:
        self.seen.append(seen)
        if self.legacy == "none" and "/.well-known/" in seen.url:
            return _reply(request, 404, {"error": "not_found"})
        return self._authorization_server(LEGACY, seen, lambda *a: _reply(request, *a))

    def _rewrite(self, request: Any, url: str, response: Any) -> Any:
        if url == AS_METADATA and response.status_code == 200 and self.as_extra:
            return _reply(request, 200, {**json.loads(response.content), **self.as_extra})
        if url.startswith(RESOURCE) and response.status_code == 401:
            challenge = response.headers["www-authenticate"]
            if self.legacy:
                challenge = 'Bearer realm="mcp"'  # a 2025-03-26 server names no metadata
            elif self.challenge_scope:
                challenge += f', scope="{self.challenge_scope}"'
            return _reply(
                request, 401, json.loads(response.content), {"www-authenticate": challenge}
            )
        return response

    def _check_client(self, request: Any, seen: Seen) -> Any:
        """The token endpoint's client authentication, for the clients it knows a secret or a
        key of: exactly one method, with the right secret or a valid signed assertion."""
        form, basic = seen.form, _basic(seen.headers)
        client_id = basic[0] if basic else form.get("client_id", "")
        secret = self.secrets.get(client_id)
        key = self.public_keys.get(client_id)
        if secret is None and key is None:
            return None
        if secret is not None:
            given = [basic[1]] if basic else []
            given += [form["client_secret"]] if "client_secret" in form else []
            if given == [secret]:
                return None
        elif basic is None and "client_secret" not in form and self._assertion_ok(seen, key):
            return None
        self.seen.append(seen)
        return _reply(request, 401, {"error": "invalid_client"})

    def _assertion_ok(self, seen: Seen, key: Any) -> bool:
        form = seen.form
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return False
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                key,
                algorithms=["RS256", "ES256"],
                audience=ISSUER,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError:
            return False
        return bool(claims["iss"] == claims["sub"] == form.get("client_id", claims["iss"]))

    def _client_credentials(self, request: Any, seen: Seen) -> Any:
        self.seen.append(seen)
        basic = _basic(seen.headers)
        client_id = basic[0] if basic else seen.form.get("client_id", "")
        form = seen.form
        doc = self._issue(ISSUER, client_id, form.get("scope", ""), form.get("resource", ""), None)
        return _reply(request, 200, doc)


def _reply(
    request: Any, status: int, doc: Any = None, headers: dict[str, str] | None = None
) -> Any:
    """A response of the request's own library (httpx or httpx2), as FakeServers answers."""
    module = __import__(type(request).__module__.split(".")[0])
    content = json.dumps(doc).encode() if doc is not None else b""
    return module.Response(
        status, headers={"content-type": "application/json", **(headers or {})}, content=content
    )


def _basic(headers: dict[str, str]) -> tuple[str, str] | None:
    """HTTP Basic credentials as RFC 6749 2.3.1 sends them: each part form-urlencoded."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(value).decode("ascii").partition(":")
    return unquote_plus(user), unquote_plus(password)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def flow_provider(servers: StepServers, **kwargs: Any) -> Any:
    """The provider, logging in through ``servers.login`` (which records each URL)."""
    login: Callable[[str], str] = servers.login
    return provider(servers, login=login, **kwargs)


# -- who the client is ------------------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_client_id_metadata_document_url_is_the_client_id(combo: str) -> None:
    servers = StepServers(as_extra={"client_id_metadata_document_supported": True})
    servers.preregister(CIMD)
    auth = flow_provider(servers, client_metadata_url=CIMD, redirect_uri=REDIRECT)
    assert call(combo, servers, auth).status_code == 200
    assert servers.urls() == [RESOURCE, PRM_URL, AS_METADATA, f"{ISSUER}/token", RESOURCE]
    query = servers.login_query()
    assert query["client_id"] == CIMD and query["redirect_uri"] == REDIRECT
    [token] = servers.token_requests()
    assert set(token.form) == CODE_EXCHANGE | {"client_id"}
    assert token.form["client_id"] == CIMD and token.form["redirect_uri"] == REDIRECT
    assert "authorization" not in token.headers  # a public client: no secret anywhere


@pytest.mark.parametrize("combo", COMBOS)
def test_metadata_document_url_unsupported_by_the_server_registers_dynamically(
    combo: str,
) -> None:
    servers = StepServers()  # no client_id_metadata_document_supported
    auth = flow_provider(servers, client_metadata_url=CIMD)
    assert call(combo, servers, auth).status_code == 200
    assert servers.count("/register") == 1
    [client_id] = servers.clients
    assert servers.login_query()["client_id"] == client_id != CIMD
    assert servers.token_requests()[0].form["client_id"] == client_id


@pytest.mark.parametrize("combo", COMBOS)
def test_client_secret_post_where_the_server_supports_only_that(combo: str) -> None:
    servers = StepServers(
        as_extra={"token_endpoint_auth_methods_supported": ["client_secret_post"]},
        reported_ttl=0,  # every token seen as expired: the next request refreshes
    )
    servers.preregister("my-app", secret="s3cr:et w")
    store = TokenStore.memory()
    auth = flow_provider(
        servers, store=store, client_id="my-app", client_secret="s3cr:et w", redirect_uri=REDIRECT
    )
    assert call(combo, servers, auth).status_code == 200
    assert call(combo, servers, auth).status_code == 200  # a refresh
    assert servers.count("/register") == 0
    code, refresh = servers.token_requests()
    assert set(code.form) == CODE_EXCHANGE | {"client_id", "client_secret"}
    assert set(refresh.form) == {
        "grant_type",
        "refresh_token",
        "resource",
        "client_id",
        "client_secret",
    }
    for request in (code, refresh):
        assert request.form["client_id"] == "my-app"
        assert request.form["client_secret"] == "s3cr:et w"
        assert "authorization" not in request.headers


@pytest.mark.parametrize("combo", COMBOS)
def test_client_secret_basic_where_the_server_supports_it(combo: str) -> None:
    servers = StepServers(
        as_extra={
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]
        }
    )
    servers.preregister("my-app", secret="s3cr:et w")
    auth = flow_provider(
        servers, client_id="my-app", client_secret="s3cr:et w", redirect_uri=REDIRECT
    )
    assert call(combo, servers, auth).status_code == 200
    [code] = servers.token_requests()
    assert set(code.form) == CODE_EXCHANGE  # no client_id, no secret in the body
    assert _basic(code.headers) == ("my-app", "s3cr:et w")


@pytest.mark.parametrize("combo", COMBOS)
def test_client_credentials_authenticate_with_http_basic(combo: str) -> None:
    """RFC 6749 2.3.1: the id and the secret are form-urlencoded before base64, so a ':' in
    either survives (the server splits at the first ':')."""
    servers = StepServers()
    servers.preregister("svc:reports", secret="p@ss:wörd +1")
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc:reports",
        client_secret="p@ss:wörd +1",
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert call(combo, servers, auth).status_code == 200
    assert servers.urls() == [RESOURCE, PRM_URL, AS_METADATA, f"{ISSUER}/token", RESOURCE]
    [token] = servers.token_requests()
    assert token.form == {
        "grant_type": "client_credentials",
        "resource": RESOURCE,
        "scope": "read write",
    }
    user, password = base64.b64decode(token.headers["authorization"][6:]).decode().split(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("svc:reports", "p@ss:wörd +1")


@pytest.mark.parametrize("combo", COMBOS)
def test_client_credentials_with_private_key_jwt(combo: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    servers = StepServers()
    servers.public_keys["svc"] = key.public_key()
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        private_key=pem(key),
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert call(combo, servers, auth).status_code == 200
    [token] = servers.token_requests()
    assert set(token.form) == {
        "grant_type",
        "resource",
        "scope",
        "client_id",
        "client_assertion_type",
        "client_assertion",
    }
    assert token.form["grant_type"] == "client_credentials" and token.form["client_id"] == "svc"
    assert "authorization" not in token.headers and "client_secret" not in token.form
    assertion = token.form["client_assertion"]
    assert jwt.get_unverified_header(assertion)["alg"] == "RS256"
    claims = jwt.decode(assertion, key.public_key(), algorithms=["RS256"], audience=ISSUER)
    assert claims["iss"] == claims["sub"] == "svc"
    assert claims["exp"] > claims["iat"] and claims["jti"]


def test_private_key_jwt_with_an_ec_key_and_a_new_assertion_for_each_grant() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    # like most servers for this grant, no refresh token (RFC 6749 4.4.3); every token is
    # seen as expired, so the second request needs a second grant
    servers = StepServers(reported_ttl=0, issue_refresh=False)
    servers.public_keys["svc"] = key.public_key()
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        private_key=pem(key),
        signing_algorithm="ES256",
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert call("httpx2-async", servers, auth).status_code == 200
    assert call("httpx2-async", servers, auth).status_code == 200
    grants = servers.token_requests()
    assert [g.form["grant_type"] for g in grants] == ["client_credentials"] * 2
    claims = [
        jwt.decode(
            g.form["client_assertion"], key.public_key(), algorithms=["ES256"], audience=ISSUER
        )
        for g in grants
    ]
    assert claims[0]["jti"] != claims[1]["jti"]  # never replayed


def test_private_key_jwt_client_authenticates_its_refresh_too() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    servers = StepServers(reported_ttl=0)  # issues refresh tokens, each seen as expired
    servers.public_keys["svc"] = key.public_key()
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        private_key=pem(key),
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert call("httpx-sync", servers, auth).status_code == 200
    assert call("httpx-sync", servers, auth).status_code == 200
    refresh = servers.token_requests()[-1]
    assert refresh.form["grant_type"] in ("refresh_token", "client_credentials")
    assert "client_assertion" in refresh.form


def test_a_wrong_private_key_is_refused_by_the_server() -> None:
    """The fake token endpoint really checks the signature, so the test above can fail."""
    servers = StepServers()
    servers.public_keys["svc"] = rsa.generate_private_key(65537, 2048).public_key()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = ClientCredentials(
        RESOURCE,
        client_id="svc",
        private_key=pem(other),
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    with pytest.raises(TokenError, match="invalid_client"):
        call("httpx-sync", servers, auth)


# -- which scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_offline_access_is_added_where_the_server_lists_it(combo: str) -> None:
    servers = StepServers(as_extra={"scopes_supported": ["read", "write", "offline_access"]})
    assert call(combo, servers, flow_provider(servers)).status_code == 200
    assert servers.login_query()["scope"] == "read write offline_access"
    [client] = servers.clients.values()
    assert client["scope"] == "read write offline_access"


@pytest.mark.parametrize("combo", COMBOS)
def test_offline_access_is_not_added_where_the_server_does_not_list_it(combo: str) -> None:
    servers = StepServers()  # the server lists read and write
    assert call(combo, servers, flow_provider(servers)).status_code == 200
    assert servers.login_query()["scope"] == "read write"


@pytest.mark.parametrize("combo", COMBOS)
def test_the_challenge_scope_comes_before_the_metadata(combo: str) -> None:
    servers = StepServers(
        challenge_scope="mcp:tools",
        as_extra={"scopes_supported": ["read", "write", "mcp:tools", "offline_access"]},
    )
    assert call(combo, servers, flow_provider(servers)).status_code == 200
    assert servers.login_query()["scope"] == "mcp:tools offline_access"


@pytest.mark.parametrize("combo", COMBOS)
def test_the_users_scopes_are_never_replaced(combo: str) -> None:
    """Not by the challenge's, not by the metadata's, and no offline_access added; a step-up
    adds what the resource demands to them."""
    servers = StepServers(
        challenge_scope="mcp:tools",
        as_extra={"scopes_supported": ["read", "write", "offline_access", "admin"]},
    )
    auth = flow_provider(servers, scopes=["files:read", "files:write"])
    assert call(combo, servers, auth).status_code == 200
    assert servers.login_query(0)["scope"] == "files:read files:write"
    [client] = servers.clients.values()
    # the registration covers them, and what the server advertises, for a later step-up
    assert client["scope"].split()[:2] == ["files:read", "files:write"]
    servers.required_scope = "admin"
    assert call(combo, servers, auth).status_code == 200
    assert servers.login_query(1)["scope"] == "files:read files:write admin"
    assert list(servers.clients.values()) == [client]  # the same client for the step-up


# -- the 2025-03-26 fallbacks ----------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_without_resource_metadata_the_servers_origin_is_the_authorization_server(
    combo: str,
) -> None:
    servers = StepServers(legacy="metadata")
    assert call(combo, servers, flow_provider(servers)).status_code == 200
    assert servers.urls() == [
        RESOURCE,
        f"{LEGACY}/.well-known/oauth-protected-resource/mcp",
        f"{LEGACY}/.well-known/oauth-protected-resource",
        f"{LEGACY}/.well-known/oauth-authorization-server",
        f"{LEGACY}/register",
        f"{LEGACY}/token",
        RESOURCE,
    ]
    assert servers.logins[0].startswith(f"{LEGACY}/authorize?")
    assert servers.login_query()["resource"] == RESOURCE
    [token] = servers.token_requests()
    assert token.form["resource"] == RESOURCE and token.form["grant_type"] == "authorization_code"


@pytest.mark.parametrize("combo", COMBOS)
def test_without_any_metadata_the_default_endpoints_are_used(combo: str) -> None:
    servers = StepServers(legacy="none")
    assert call(combo, servers, flow_provider(servers)).status_code == 200
    assert servers.urls() == [
        RESOURCE,
        f"{LEGACY}/.well-known/oauth-protected-resource/mcp",
        f"{LEGACY}/.well-known/oauth-protected-resource",
        f"{LEGACY}/.well-known/oauth-authorization-server",
        f"{LEGACY}/.well-known/openid-configuration",
        f"{LEGACY}/register",
        f"{LEGACY}/token",
        RESOURCE,
    ]
    query = servers.login_query()
    assert servers.logins[0].startswith(f"{LEGACY}/authorize?")
    assert query["code_challenge_method"] == "S256" and "scope" not in query
    [client_id] = servers.clients
    [token] = servers.token_requests()
    assert set(token.form) == CODE_EXCHANGE | {"client_id"}
    assert token.form["client_id"] == client_id and token.form["resource"] == RESOURCE
