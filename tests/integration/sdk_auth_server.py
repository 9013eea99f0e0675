"""The ``mcp`` SDK's own authorization server: its auth routes (registration, authorize, token,
revocation) over an in-memory provider, in the SDK's ``MCPServer``, which is also the protected
resource. What most Python MCP servers embed (FastMCP's ``InMemoryOAuthProvider`` uses these
same routes).

The provider approves every authorization request at once (no user interface), keeps
clients, codes and tokens in memory, and records what was revoked, so a test can check that a
revocation reached it. Clients may register for ``mcp:tools`` and ``mcp:write``; ``save_note``
needs the second (a 403 ``insufficient_scope`` first: step-up). Served by uvicorn in a thread,
on a socket bound to 127.0.0.1 first.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    ProviderTokenVerifier,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from .mcp_server import BASE_SCOPE, WRITE_SCOPE, StepUpGate

HOST = "127.0.0.1"
SCOPES = [BASE_SCOPE, WRITE_SCOPE]  # what clients may register for; every request needs the first


@dataclass
class InMemoryProvider:
    """An ``OAuthAuthorizationServerProvider`` that approves every request."""

    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)  # "access" / "refresh", in order

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(32)
        assert client.client_id is not None
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="sdk-user",
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = int(time.time()) + 3600
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=expires,
            resource=resource,
            subject="sdk-user",
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        return OAuthToken(
            access_token=access,
            expires_in=3600,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self._issue(
            authorization_code.client_id, authorization_code.scopes, authorization_code.resource
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        self.refresh.pop(refresh_token.token, None)
        return self._issue(
            refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, AccessToken):
            self.access.pop(token.token, None)
            self.revoked.append("access")
        else:
            self.refresh.pop(token.token, None)
            self.revoked.append("refresh")


@dataclass
class SdkAuthServer:
    url: str  # the MCP endpoint, the protected resource
    issuer: str
    provider: InMemoryProvider


class RefuseRevocation:
    """In front of the app: ``/revoke`` refuses every request as the SDK's handler refuses one
    without a ``client_secret`` field (a server that takes not even the empty field)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/revoke":
            body = (
                b'{"error":"invalid_request","error_description":"client_secret: Field required"}'
            )
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@contextmanager
def sdk_auth_server(*, refuse_revocation: bool = False) -> Iterator[SdkAuthServer]:
    """Start the SDK's server with its own authorization server; stop it afterwards.
    ``refuse_revocation``: its revocation endpoint refuses every request."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(64)
    issuer = f"http://{HOST}:{sock.getsockname()[1]}"
    provider = InMemoryProvider()
    server = MCPServer(
        name="the mcp SDK's authorization server",
        auth_server_provider=provider,
        auth=AuthSettings.model_validate(
            {
                "issuer_url": issuer,
                "resource_server_url": f"{issuer}/mcp",
                "required_scopes": [BASE_SCOPE],
                "validate_token_resource": True,
                "client_registration_options": ClientRegistrationOptions(
                    enabled=True, valid_scopes=SCOPES, default_scopes=SCOPES
                ),
                "revocation_options": RevocationOptions(enabled=True),
            }
        ),
        log_level="WARNING",
    )

    @server.tool()
    def echo(text: str) -> str:
        return text

    @server.tool()
    def save_note(text: str) -> str:
        """Needs mcp:write: the gate answers 403 insufficient_scope before (step-up)."""
        return f"saved: {text}"

    app: Any = StepUpGate(
        server.streamable_http_app(host=HOST),
        verifier=ProviderTokenVerifier(provider),
        path="/mcp",
        resource_metadata_url=f"{issuer}/.well-known/oauth-protected-resource/mcp",
    )
    if refuse_revocation:
        app = RefuseRevocation(app)
    runner = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not runner.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the mcp SDK's server did not start")
        time.sleep(0.05)
    try:
        yield SdkAuthServer(f"{issuer}/mcp", issuer, provider)
    finally:
        runner.should_exit = True
        thread.join(30)
        sock.close()
