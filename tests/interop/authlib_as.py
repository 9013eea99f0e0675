"""An Authlib authorization server (PyPI ``authlib``): Authlib's own grant, endpoint and
extension classes, with what Authlib leaves to the application (models, storage, the HTTP
glue, the user's consent) done in memory here, as a small deployment would.

- Authorization code grant with PKCE S256 required (RFC 7636), refresh-token grant (rotating),
  public clients (``none``) and ``client_secret_basic``/``_post``;
- RFC 7591 registration (open), RFC 7592 client configuration (read, update, delete with the
  registration access token), RFC 7009 revocation, RFC 7662 introspection (for the resource
  server, with its own client), RFC 9207 ``iss`` in the authorization response, RFC 8414
  metadata;
- every authorization is approved at once for the user ``interop-user``.

Authlib has no RFC 8707 ``resource`` parameter: tokens carry no audience, and the resource
server checks their scope only.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, JsonRequest, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonPayload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.integration.mcp_server import SCOPES

USER = "interop-user"
RS_CLIENT = ("interop-rs", secrets.token_urlsafe(16))  # the resource server's, in-process
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http, on loopback only


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str | None
    metadata: dict[str, Any]
    registration_access_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def get_client_id(self) -> str:
        return self.client_id

    @property
    def client_info(self) -> dict[str, Any]:  # RFC 7592 read: what registration issued
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "client_secret_expires_at": 0,
        }

    @property
    def client_metadata(self) -> dict[str, Any]:
        return self.metadata

    def get_default_redirect_uri(self) -> str | None:
        uris = self.metadata.get("redirect_uris") or []
        return uris[0] if uris else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(str(self.metadata.get("scope", "")).split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.metadata.get("redirect_uris") or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(
            self.client_secret, client_secret
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.metadata.get("token_endpoint_auth_method", "client_secret_basic")
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.metadata.get("response_types", ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.metadata.get("grant_types", ["authorization_code"])


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_auth_time(self) -> int | None:
        return None

    def get_nonce(self) -> str | None:
        return None


@dataclass
class Token:
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: int
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.issued_at + self.expires_in < time.time()

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return USER

    def get_client(self) -> Client:
        return STATE.clients[self.client_id]


class State:
    """Everything the server knows, in memory (used from the event loop's thread only)."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []

    def token(self, value: str, hint: str | None = None) -> Token | None:
        kinds = (
            ("access_token", "refresh_token")
            if hint != "refresh_token"
            else ("refresh_token", "access_token")
        )
        for kind in kinds:
            for token in self.tokens:
                if getattr(token, kind) == value:
                    return token
        return None


STATE = State()


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [  # noqa: RUF012
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        STATE.codes[code] = Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope or "",
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = STATE.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        STATE.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return USER


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [  # noqa: RUF012
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = STATE.token(refresh_token, "refresh_token")
        if token is None or token.refresh_token != refresh_token or token.revoked:
            return None
        return token

    def authenticate_user(self, refresh_token: Token) -> str:
        return USER

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    def authenticate_token(self, request: JsonRequest) -> bool:
        return True  # open registration

    def generate_client_secret(self, request: JsonRequest) -> str | None:
        method = request.payload.data.get("token_endpoint_auth_method")
        return None if method == "none" else secrets.token_urlsafe(24)

    def save_client(
        self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: JsonRequest
    ) -> Client:
        client = Client(
            client_info["client_id"], client_info["client_secret"], dict(client_metadata)
        )
        STATE.clients[client.client_id] = client
        return client

    def generate_client_registration_info(self, client: Client, request: Any) -> dict[str, str]:
        return registration_info(client)

    def get_server_metadata(self) -> dict[str, Any]:
        return SERVER_METADATA


class Configuration(ClientConfigurationEndpoint):  # type: ignore[misc]
    def authenticate_token(self, request: JsonRequest) -> RegistrationToken | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        return RegistrationToken(header[7:])

    def authenticate_client(self, request: JsonRequest) -> Client | None:
        return STATE.clients.get(request.uri.rstrip("/").rsplit("/", 1)[-1])

    def revoke_access_token(self, token: str, request: JsonRequest) -> None:
        pass  # the registration access token stays the same

    def check_permission(self, client: Client, request: JsonRequest) -> bool:
        return True

    def delete_client(self, client: Client, request: JsonRequest) -> None:
        STATE.clients.pop(client.client_id, None)

    def update_client(
        self, client: Client, client_metadata: dict[str, Any], request: JsonRequest
    ) -> Client:
        client.metadata.update(client_metadata)
        return client

    def generate_client_registration_info(self, client: Client, request: Any) -> dict[str, str]:
        return registration_info(client)

    def get_server_metadata(self) -> dict[str, Any]:
        return SERVER_METADATA


@dataclass
class RegistrationToken:
    """An RFC 7592 registration access token, as presented."""

    value: str

    def check_client(self, client: Client) -> bool:
        return secrets.compare_digest(client.registration_access_token, self.value)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [  # noqa: RUF012
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return STATE.token(token_string, token_type_hint)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        token.revoked = True  # the grant's access and refresh token together


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [  # noqa: RUF012
        "client_secret_basic"
    ]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return STATE.token(token_string, token_type_hint)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer",
            "scope": token.scope,
            "sub": USER,
            "iss": SERVER_METADATA["issuer"],
            "exp": token.issued_at + token.expires_in,
            "iat": token.issued_at,
        }

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return client.client_id == RS_CLIENT[0]


class Issuer(IssuerParameter):  # type: ignore[misc]
    def get_issuer(self) -> str:
        return str(SERVER_METADATA["issuer"])


SERVER_METADATA: dict[str, Any] = {}


def registration_info(client: Client) -> dict[str, str]:
    return {
        "registration_client_uri": f"{SERVER_METADATA['issuer']}/register/{client.client_id}",
        "registration_access_token": client.registration_access_token,
    }


class StarletteServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server, glued to requests read whole by the Starlette endpoints below."""

    def __init__(self, ttl: int) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.ttl = ttl

    def query_client(self, client_id: str) -> Client | None:
        return STATE.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        STATE.tokens.append(
            Token(
                client_id=request.client.client_id,
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token.get("scope", ""),
                issued_at=int(time.time()),
                expires_in=int(token["expires_in"]),
            )
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: JsonRequest) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers)
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=headers)
        return Redirect(body or b"", status_code=status, headers=headers)


class Redirect(Response):
    """A response whose ``location`` Authlib's RFC 9207 extension reads and rewrites."""

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @location.setter
    def location(self, value: str) -> None:
        self.headers["location"] = value


class FormRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: Any, data: dict[str, str]):
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


class _Json(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


class BodyJsonRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: Any, data: Any) -> None:
        super().__init__(method, uri, headers)
        self.payload = _Json(data)


async def _form(request: Request) -> FormRequest:
    data = dict(request.query_params)
    if request.method == "POST":
        data.update(parse_qsl((await request.body()).decode()))
    return FormRequest(request.method, str(request.url), request.headers, data)


async def _json(request: Request) -> BodyJsonRequest:
    body = await request.body()
    data = json.loads(body) if body else None
    return BodyJsonRequest(request.method, str(request.url), request.headers, data)


def build(base: str, ttl: int) -> tuple[ASGIApp, tuple[str, str]]:
    """The authorization server's app (issuer ``base``) and the introspection client."""
    SERVER_METADATA.update(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "revocation_endpoint": f"{base}/revoke",
            "introspection_endpoint": f"{base}/introspect",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
    )
    STATE.clients[RS_CLIENT[0]] = Client(
        RS_CLIENT[0],
        RS_CLIENT[1],
        {
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": [],
            "response_types": [],
        },
    )
    server = StarletteServer(ttl)
    server.register_token_generator("default", _bearer(ttl))
    server.register_grant(CodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Registration)
    server.register_endpoint(Configuration)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_extension(Issuer())

    async def metadata(request: Request) -> Response:
        return JSONResponse(SERVER_METADATA)

    async def authorize(request: Request) -> Response:
        return server.create_authorization_response(await _form(request), grant_user=USER)

    async def token(request: Request) -> Response:
        return server.create_token_response(await _form(request))

    async def revoke(request: Request) -> Response:
        return server.create_endpoint_response("revocation", await _form(request))

    async def introspect(request: Request) -> Response:
        return server.create_endpoint_response("introspection", await _form(request))

    async def register(request: Request) -> Response:
        return server.create_endpoint_response("client_registration", await _json(request))

    async def configure(request: Request) -> Response:
        return server.create_endpoint_response("client_configuration", await _json(request))

    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST"]),
            Route("/register", register, methods=["POST"]),
            Route("/register/{client_id}", configure, methods=["GET", "PUT", "DELETE"]),
        ]
    )
    return app, RS_CLIENT


def _bearer(ttl: int) -> Any:
    from authlib.oauth2.rfc6750 import BearerTokenGenerator

    def access(client: Any, grant_type: str, user: Any, scope: str) -> str:
        return secrets.token_urlsafe(32)

    def refresh(client: Any, grant_type: str, user: Any, scope: str) -> str:
        return secrets.token_urlsafe(32)

    return BearerTokenGenerator(access, refresh, lambda client, grant_type: ttl)


def authlib_app(base: str, ttl: int) -> ASGIApp:
    """The Authlib server and, at /mcp, the integration MCP server checking its tokens by
    introspection, in one app."""
    from .py_servers import resource_app

    auth, client = build(base, ttl)
    mcp = resource_app(base, base, f"{base}/introspect", client)
    return _Dispatch(auth, mcp)


class _Dispatch:
    """/mcp and the protected-resource metadata to the MCP server, the rest to Authlib."""

    def __init__(self, auth: ASGIApp, mcp: ASGIApp) -> None:
        self.auth, self.mcp = auth, mcp

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        to_auth = scope["type"] == "http" and not (
            path == "/mcp" or path.startswith("/.well-known/oauth-protected-resource")
        )
        await (self.auth if to_auth else self.mcp)(scope, receive, send)
