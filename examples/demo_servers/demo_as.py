"""A small but correct OAuth 2.1 authorization server, for the quickstart and the tests.

Why it exists: the quickstart must show the whole MCP authorization flow on one machine, with
no account anywhere and no Node. A toy server that accepts anything would prove nothing, so this
one enforces what a real server enforces and a client library can get wrong:

- RFC 8414 metadata whose ``issuer`` is exactly the server's origin, advertising PKCE ``S256``
  only and the RFC 9207 ``iss`` authorization-response parameter;
- RFC 7591 dynamic registration of native clients with loopback redirect URIs (any port, as
  RFC 8252 section 7.3 requires) or https redirect URIs, public or confidential;
- ``/authorize`` that approves on its own (the quickstart's default) or shows a one-button
  consent page (``--browser``), and answers with ``code``, ``state`` and ``iss``;
- ``/token`` for ``authorization_code`` (PKCE S256 verified, RFC 8707 ``resource`` required and
  matched, one-time codes whose replay revokes what they issued) and ``refresh_token``
  (rotation, with replay of a rotated token revoking the whole grant, as OAuth 2.1 advises);
- ES256-signed JWT access tokens (RFC 9068 shape: ``aud`` = the resource, ``scope``, ``exp``)
  with their keys at a JWKS endpoint, and RFC 7009 revocation.

State lives in memory and dies with the process. Everything binds to 127.0.0.1 only (see
``servers.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["DEFAULT_SCOPES", "SUPPORTED_SCOPES", "DemoAuthorizationServer", "OAuthError"]

#: Scopes this server knows. ``mcp:tools`` opens the demo MCP server; ``mcp:profile`` is the
#: extra scope one tool needs (for step-up demos); ``offline_access`` is accepted and ignored
#: (every grant of a client registered for ``refresh_token`` gets a refresh token).
SUPPORTED_SCOPES: tuple[str, ...] = ("mcp:tools", "mcp:profile", "offline_access")
#: What an authorization request without ``scope`` is granted.
DEFAULT_SCOPES: tuple[str, ...] = ("mcp:tools",)

_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
_GRANT_TYPES = ("authorization_code", "refresh_token")
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "::1", "localhost")
# RFC 7636 section 4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# An S256 challenge is base64url(sha256(verifier)) without padding: exactly 43 characters.
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 error response: ``error`` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers={**_NO_STORE, **(headers or {})},
        )


@dataclass
class RegisteredClient:
    """A client as RFC 7591 registered it."""

    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    client_name: str | None
    scope: str | None
    issued_at: int


@dataclass
class AuthorizationRequest:
    """A validated authorization request, waiting for consent or turned into a code."""

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    state: str | None
    scopes: tuple[str, ...]
    resource: str
    code_challenge: str


@dataclass
class IssuedCode:
    request: AuthorizationRequest
    expires_at: float
    grant_id: str


@dataclass
class Grant:
    """One user approval and everything descended from it: revoking it revokes them all."""

    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str
    revoked: bool = False
    refresh_tokens: set[str] = field(default_factory=set)


@dataclass
class RefreshRecord:
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    active: bool = True


def _b64url_sha256(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_loopback_redirect(uri: str) -> bool:
    """RFC 8252 section 7.3: an http redirect URI on a loopback interface."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


def _valid_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc:
        return False
    return is_loopback_redirect(uri) or parts.scheme == "https"


def redirect_uri_matches(registered: str, given: str) -> bool:
    """Exact match, except that a loopback URI may use any port (RFC 8252 section 7.3).

    Why: a native app picks a free port at login time, long after it registered.
    """
    if registered == given:
        return True
    if not (is_loopback_redirect(registered) and is_loopback_redirect(given)):
        return False
    r, g = urlsplit(registered), urlsplit(given)
    return (r.scheme, r.hostname, r.path, r.query) == (g.scheme, g.hostname, g.path, g.query)


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """Add ``params`` to ``uri``'s query, keeping what it already has (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _single(params: Sequence[tuple[str, str]], name: str) -> str | None:
    """The one value of ``name``; a repeated parameter is an error (RFC 6749 3.1, 3.2)."""
    values = [v for k, v in params if k == name]
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name!r} is repeated")
    return values[0] if values else None


class DemoAuthorizationServer:
    """The authorization server: configuration, in-memory state and the Starlette ``app``.

    ``issuer`` is the server's origin (``http://127.0.0.1:PORT``), used verbatim as the RFC 8414
    ``issuer`` and RFC 9207 ``iss``. ``resources`` lists the protected resources tokens may be
    issued for (RFC 8707); empty means any absolute http(s) URL. ``auto_approve`` skips the
    consent page. ``stats`` counts what happened, so a demo can say it (never a secret).
    """

    def __init__(
        self,
        issuer: str,
        *,
        resources: Sequence[str] = (),
        scopes_supported: Sequence[str] = SUPPORTED_SCOPES,
        default_scopes: Sequence[str] = DEFAULT_SCOPES,
        auto_approve: bool = True,
        access_token_ttl: int = 3600,
        code_ttl: int = 60,
        subject: str = "demo-user",
    ) -> None:
        if issuer.endswith("/") or urlsplit(issuer).path:
            raise ValueError("the issuer of this demo server is its origin, without a path")
        self.issuer = issuer
        self.resources = tuple(resources)
        self.scopes_supported = tuple(scopes_supported)
        self.default_scopes = tuple(default_scopes)
        self.auto_approve = auto_approve
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.subject = subject
        self.stats: Counter[str] = Counter()

        self._key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = secrets.token_urlsafe(8)
        self.clients: dict[str, RegisteredClient] = {}
        self._pending: dict[str, AuthorizationRequest] = {}
        self._codes: dict[str, IssuedCode] = {}
        self._used_codes: dict[str, str] = {}  # code -> grant_id, to revoke on replay
        self._grants: dict[str, Grant] = {}
        self._refresh: dict[str, RefreshRecord] = {}
        self.revoked_access_tokens: set[str] = set()  # jti values

        self.app = Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata, methods=["GET"]),
                Route("/jwks.json", self._jwks, methods=["GET"]),
                Route("/register", self._register, methods=["POST"]),
                Route("/authorize", self._authorize, methods=["GET"]),
                Route("/authorize/decision", self._decision, methods=["POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/revoke", self._revoke, methods=["POST"]),
            ]
        )

    # -- documents ------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "jwks_uri": f"{self.issuer}/jwks.json",
            "scopes_supported": list(self.scopes_supported),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(_GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(_AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(_AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        """The public signing keys (RFC 7517), for resource servers to verify access tokens."""
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.key_id, "use": "sig", "alg": "ES256"}]}

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def issue_access_token(
        self,
        *,
        client_id: str,
        scopes: Sequence[str],
        resource: str,
        ttl: int | None = None,
        subject: str | None = None,
    ) -> str:
        """Sign an RFC 9068 JWT access token. Public so tests can mint edge cases."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject or self.subject,
            "aud": resource,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + (self.access_token_ttl if ttl is None else ttl),
            "jti": secrets.token_urlsafe(16),
        }
        headers = {"kid": self.key_id, "typ": "at+jwt"}
        return jwt.encode(claims, self._key, algorithm="ES256", headers=headers)

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata)

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.jwks())

    # -- registration (RFC 7591) ---------------------------------------------------------

    async def _register(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return OAuthError("invalid_client_metadata", "the body is not JSON").response()
        if not isinstance(body, dict):
            return OAuthError("invalid_client_metadata", "the body is not a JSON object").response()
        try:
            client = self._new_client(body)
        except OAuthError as exc:
            return exc.response()
        self.clients[client.client_id] = client
        self.stats["registrations"] += 1
        answer: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": client.issued_at,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
        }
        if client.client_name is not None:
            answer["client_name"] = client.client_name
        if client.scope is not None:
            answer["scope"] = client.scope
        if client.client_secret is not None:
            answer["client_secret"] = client.client_secret
            answer["client_secret_expires_at"] = 0
        return JSONResponse(answer, status_code=201, headers=_NO_STORE)

    def _new_client(self, body: Mapping[str, Any]) -> RegisteredClient:
        uris = body.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty list")
        for uri in uris:
            if not _valid_redirect_uri(uri):
                raise OAuthError(
                    "invalid_redirect_uri",
                    f"{uri!r}: use a loopback http URI (127.0.0.1, [::1], localhost) or https",
                )
        # RFC 7591 2: the default method is client_secret_basic, the default grant
        # authorization_code alone; a client that wants refresh tokens says so.
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in _AUTH_METHODS:
            raise OAuthError(
                "invalid_client_metadata", f"token_endpoint_auth_method {method!r} not supported"
            )
        grants = body.get("grant_types", ["authorization_code"])
        if not isinstance(grants, list) or not grants or any(g not in _GRANT_TYPES for g in grants):
            raise OAuthError(
                "invalid_client_metadata", f"grant_types must be within {_GRANT_TYPES}"
            )
        responses = body.get("response_types", ["code"])
        if responses != ["code"]:
            raise OAuthError("invalid_client_metadata", "response_types must be ['code']")
        scope = body.get("scope")
        if scope is not None:
            if not isinstance(scope, str):
                raise OAuthError("invalid_client_metadata", "scope must be a string")
            unknown = set(scope.split()) - set(self.scopes_supported)
            if unknown:
                raise OAuthError("invalid_client_metadata", f"unknown scopes: {sorted(unknown)}")
        name = body.get("client_name")
        return RegisteredClient(
            client_id=f"client-{secrets.token_urlsafe(12)}",
            client_secret=None if method == "none" else secrets.token_urlsafe(32),
            token_endpoint_auth_method=method,
            redirect_uris=list(uris),
            grant_types=list(grants),
            client_name=name if isinstance(name, str) else None,
            scope=scope,
            issued_at=int(time.time()),
        )

    # -- authorization endpoint ------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        # Errors about the client or its redirect URI are shown, never redirected (RFC 6749
        # 4.1.2.1): sending them to an unverified URI would make this an open redirector.
        try:
            client, redirect_uri, given = self._client_and_redirect(params)
        except OAuthError as exc:
            return _error_page(exc)
        try:
            state = _single(params, "state")
        except OAuthError as exc:
            return _error_page(exc)
        try:
            auth = self._validate_authorization(params, client, redirect_uri, given, state)
        except OAuthError as exc:
            return self._redirect(
                redirect_uri, error=exc.error, description=exc.description, state=state
            )
        if self.auto_approve:
            return self._approve(auth)
        request_id = secrets.token_urlsafe(24)
        self._pending[request_id] = auth
        return _consent_page(request_id, client, auth)

    def _client_and_redirect(
        self, params: Sequence[tuple[str, str]]
    ) -> tuple[RegisteredClient, str, bool]:
        client_id = _single(params, "client_id")
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id: register first (RFC 7591)")
        redirect_uri = _single(params, "redirect_uri")
        if redirect_uri is None:
            if len(client.redirect_uris) != 1:
                raise OAuthError("invalid_request", "redirect_uri is required")
            return client, client.redirect_uris[0], False
        if not any(redirect_uri_matches(r, redirect_uri) for r in client.redirect_uris):
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
        return client, redirect_uri, True

    def _validate_authorization(
        self,
        params: Sequence[tuple[str, str]],
        client: RegisteredClient,
        redirect_uri: str,
        redirect_uri_given: bool,
        state: str | None,
    ) -> AuthorizationRequest:
        if _single(params, "response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        if "authorization_code" not in client.grant_types:
            raise OAuthError("unauthorized_client", "client is not registered for this grant")
        challenge = _single(params, "code_challenge")
        method = _single(params, "code_challenge_method")
        if challenge is None:
            raise OAuthError("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
        if method != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE_RE.match(challenge):
            raise OAuthError("invalid_request", "code_challenge is not an S256 challenge")
        scopes = self._requested_scopes(_single(params, "scope"), self.default_scopes)
        resources = [v for k, v in params if k == "resource"]
        if not resources:
            raise OAuthError("invalid_target", "resource is required (RFC 8707)")
        if len(resources) > 1:
            raise OAuthError("invalid_target", "one resource per request")
        resource = resources[0]
        self._check_resource(resource)
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            redirect_uri_given=redirect_uri_given,
            state=state,
            scopes=scopes,
            resource=resource,
            code_challenge=challenge,
        )

    def _requested_scopes(self, scope: str | None, default: Sequence[str]) -> tuple[str, ...]:
        if scope is None or not scope.strip():
            return tuple(default)
        requested = tuple(dict.fromkeys(scope.split()))
        unknown = [s for s in requested if s not in self.scopes_supported]
        if unknown:
            raise OAuthError("invalid_scope", f"unknown scopes: {unknown}")
        return requested

    def _check_resource(self, resource: str) -> None:
        parts = urlsplit(resource)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise OAuthError("invalid_target", "resource must be an absolute URL, no fragment")
        if self.resources and resource not in self.resources:
            raise OAuthError("invalid_target", f"unknown resource {resource!r}")

    def _approve(self, auth: AuthorizationRequest) -> Response:
        code = secrets.token_urlsafe(32)
        grant_id = secrets.token_urlsafe(12)
        self._codes[code] = IssuedCode(auth, time.time() + self.code_ttl, grant_id)
        self.stats["authorizations"] += 1
        return self._redirect(auth.redirect_uri, code=code, state=auth.state)

    def _redirect(
        self,
        redirect_uri: str,
        *,
        code: str | None = None,
        error: str | None = None,
        description: str | None = None,
        state: str | None = None,
    ) -> Response:
        location = _with_query(
            redirect_uri,
            {
                "code": code,
                "error": error,
                "error_description": description,
                "state": state,
                "iss": self.issuer,  # RFC 9207, on success and error alike
            },
        )
        return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})

    async def _decision(self, request: Request) -> Response:
        form = await request.form()
        request_id = form.get("request_id")
        auth = self._pending.pop(request_id, None) if isinstance(request_id, str) else None
        if auth is None:
            return _error_page(OAuthError("invalid_request", "unknown or used consent request"))
        if form.get("decision") != "approve":
            self.stats["denials"] += 1
            return self._redirect(
                auth.redirect_uri,
                error="access_denied",
                description="the user said no",
                state=auth.state,
            )
        return self._approve(auth)

    # -- token endpoint ----------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        try:
            params = await _form_params(request)
            client = self._authenticate_client(request, params)
            grant_type = _single(params, "grant_type")
            if grant_type not in _GRANT_TYPES:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
            if grant_type not in client.grant_types:
                raise OAuthError(
                    "unauthorized_client", f"client is not registered for {grant_type}"
                )
            if grant_type == "authorization_code":
                body = self._exchange_code(client, params)
            else:
                body = self._refresh_grant(client, params)
        except OAuthError as exc:
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            return exc.response(headers)
        return JSONResponse(body, headers=_NO_STORE)

    def _authenticate_client(
        self, request: Request, params: Sequence[tuple[str, str]]
    ) -> RegisteredClient:
        """RFC 6749 2.3: exactly one method, the one the client registered."""
        basic = request.headers.get("authorization", "")
        form_id = _single(params, "client_id")
        form_secret = _single(params, "client_secret")
        client_id: str | None
        secret: str | None
        if basic.lower().startswith("basic "):
            try:
                raw = base64.b64decode(basic[6:], validate=True).decode("utf-8")
                user, _, password = raw.partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
            if form_secret is not None:
                raise OAuthError("invalid_request", "use one client authentication method")
            client_id, secret = unquote_plus(user), unquote_plus(password)
            method = "client_secret_basic"
            if form_id is not None and form_id != client_id:
                raise OAuthError("invalid_client", "client_id does not match", 401)
        elif form_secret is not None:
            client_id, secret, method = form_id, form_secret, "client_secret_post"
        else:
            client_id, secret, method = form_id, None, "none"
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client.token_endpoint_auth_method != method:
            raise OAuthError(
                "invalid_client",
                f"client registered {client.token_endpoint_auth_method}, used {method}",
                401,
            )
        if client.client_secret is not None and not hmac.compare_digest(
            client.client_secret.encode(), (secret or "").encode()
        ):
            raise OAuthError("invalid_client", "wrong client secret", 401)
        return client

    def _exchange_code(
        self, client: RegisteredClient, params: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        code = _single(params, "code")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        issued = self._codes.pop(code, None)  # one use, whatever happens next
        if issued is None:
            replayed = self._used_codes.get(code)
            if replayed is not None:
                # OAuth 2.1 4.1.3: a code used twice revokes the tokens it issued.
                self._revoke_grant(replayed)
                self.stats["code_replays"] += 1
                raise OAuthError("invalid_grant", "authorization code was already used")
            raise OAuthError("invalid_grant", "unknown authorization code")
        self._used_codes[code] = issued.grant_id
        auth = issued.request
        if auth.client_id != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client")
        if time.time() > issued.expires_at:
            raise OAuthError("invalid_grant", "authorization code expired")
        redirect_uri = _single(params, "redirect_uri")
        if auth.redirect_uri_given and redirect_uri != auth.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = _single(params, "code_verifier")
        if verifier is None:
            raise OAuthError("invalid_request", "code_verifier is required (PKCE)")
        if not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(
            _b64url_sha256(verifier), auth.code_challenge
        ):
            self.stats["pkce_failures"] += 1
            raise OAuthError("invalid_grant", "PKCE verification failed")
        resource = _single(params, "resource")
        if resource is None:
            raise OAuthError("invalid_target", "resource is required (RFC 8707)")
        if resource != auth.resource:
            raise OAuthError("invalid_target", "resource differs from the authorization request")
        grant = Grant(issued.grant_id, client.client_id, self.subject, auth.scopes, auth.resource)
        self._grants[grant.grant_id] = grant
        self.stats["tokens_from_code"] += 1
        return self._token_response(client, grant, auth.scopes)

    def _refresh_grant(
        self, client: RegisteredClient, params: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        token = _single(params, "refresh_token")
        if not token:
            raise OAuthError("invalid_request", "refresh_token is required")
        record = self._refresh.get(token)
        if record is None or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown refresh token")
        grant = self._grants[record.grant_id]
        if grant.revoked:
            raise OAuthError("invalid_grant", "refresh token was revoked")
        if not record.active:
            # OAuth 2.1 4.3.1: a rotated refresh token used again means it leaked.
            self._revoke_grant(grant.grant_id)
            self.stats["refresh_replays"] += 1
            raise OAuthError("invalid_grant", "refresh token was already used; grant revoked")
        scopes = self._requested_scopes(_single(params, "scope"), record.scopes)
        if not set(scopes) <= set(grant.scopes):
            raise OAuthError("invalid_scope", "a refresh cannot widen the granted scopes")
        resource = _single(params, "resource")
        if resource is not None and resource != grant.resource:
            raise OAuthError("invalid_target", "resource differs from the grant's")
        record.active = False  # rotation
        self.stats["refreshes"] += 1
        return self._token_response(client, grant, scopes)

    def _token_response(
        self, client: RegisteredClient, grant: Grant, scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.issue_access_token(
                client_id=client.client_id,
                scopes=scopes,
                resource=grant.resource,
                subject=grant.subject,
            ),
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": " ".join(scopes),
        }
        if "refresh_token" in client.grant_types:
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = RefreshRecord(grant.grant_id, client.client_id, scopes)
            grant.refresh_tokens.add(refresh)
            body["refresh_token"] = refresh
        self.stats["access_tokens"] += 1
        return body

    def _revoke_grant(self, grant_id: str) -> None:
        grant = self._grants.get(grant_id)
        if grant is None:
            return
        grant.revoked = True
        for token in grant.refresh_tokens:
            self._refresh[token].active = False

    # -- revocation (RFC 7009) ---------------------------------------------------------------

    async def _revoke(self, request: Request) -> Response:
        try:
            params = await _form_params(request)
            client = self._authenticate_client(request, params)
            token = _single(params, "token")
            if not token:
                raise OAuthError("invalid_request", "token is required")
        except OAuthError as exc:
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            return exc.response(headers)
        record = self._refresh.get(token)
        if record is not None:
            if record.client_id != client.client_id:
                return OAuthError("invalid_request", "token belongs to another client").response()
            # Revoking a refresh token ends its grant (RFC 7009 2.1).
            self._revoke_grant(record.grant_id)
            self.stats["revocations"] += 1
            return Response(status_code=200, headers=_NO_STORE)
        claims = self._decode_own_access_token(token)
        if claims is not None:
            if claims.get("client_id") != client.client_id:
                return OAuthError("invalid_request", "token belongs to another client").response()
            self.revoked_access_tokens.add(str(claims.get("jti")))
            self.stats["revocations"] += 1
        # RFC 7009 2.2: unknown and already-invalid tokens are answered 200 too.
        return Response(status_code=200, headers=_NO_STORE)

    def _decode_own_access_token(self, token: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["ES256"],
                issuer=self.issuer,
                options={"verify_aud": False, "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        return claims


async def _form_params(request: Request) -> list[tuple[str, str]]:
    """The form body as a list of pairs, so repeated parameters can be refused."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}
code{{word-break:break-all}}</style>
</head><body>{body}</body></html>"""


def _error_page(exc: OAuthError) -> HTMLResponse:
    body = (
        f"<h1>Authorization request refused</h1><p><code>{html.escape(exc.error)}</code>: "
        f"{html.escape(exc.description)}</p>"
    )
    return HTMLResponse(_PAGE.format(title="Refused", body=body), status_code=exc.status)


def _consent_page(
    request_id: str, client: RegisteredClient, auth: AuthorizationRequest
) -> HTMLResponse:
    """The tiny page ``--browser`` shows: who asks, for what, on which server; one button."""
    name = html.escape(client.client_name or client.client_id)
    scopes = ", ".join(f"<code>{html.escape(s)}</code>" for s in auth.scopes)
    body = f"""<h1>Sign in to the demo server</h1>
<p><strong>{name}</strong> asks for {scopes} on <code>{html.escape(auth.resource)}</code>.</p>
<p>This demo authorization server runs on your machine and has one user.</p>
<form method="post" action="/authorize/decision">
<input type="hidden" name="request_id" value="{html.escape(request_id)}">
<button name="decision" value="approve" autofocus>Approve</button>
<button name="decision" value="deny">Deny</button>
</form>"""
    return HTMLResponse(
        _PAGE.format(title="Approve access", body=body),
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )
