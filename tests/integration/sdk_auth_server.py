"""The ``mcp`` SDK's own authorization server: its auth routes (registration, authorize, token,
revocation) over an in-memory provider, in the SDK's ``MCPServer``, which is also the protected
resource. What most Python MCP servers embed (FastMCP's ``InMemoryOAuthProvider`` uses these
same routes).

The provider (``tests/servers/sdk_provider.py``) approves every authorization request at once,
keeps everything in memory, and records what was revoked, so a test can check that a
revocation reached it; each token stands alone. Clients may register for ``mcp:tools`` and
``mcp:write``; ``save_note`` needs the second (a 403 ``insufficient_scope`` first: step-up).
Served by uvicorn in a thread, on a socket bound to 127.0.0.1 first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import ProviderTokenVerifier
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from tests.servers.in_thread import serve_in_thread
from tests.servers.processes import listening_socket, prm_url
from tests.servers.sdk_provider import MemoryProvider

from .mcp_server import BASE_SCOPE, HOST, SCOPES, StepUpGate, add_tools

MCP_PATH = "/mcp"


@dataclass
class SdkAuthServer:
    url: str  # the MCP endpoint, the protected resource
    issuer: str
    provider: MemoryProvider


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


def sdk_auth_app(
    base: str,
    provider: MemoryProvider,
    *,
    name: str,
    stateless: bool,
    default_scopes: list[str] | None = None,
) -> ASGIApp:
    """The SDK's ``MCPServer`` at ``base`` + ``/mcp`` with its authorization-server routes over
    ``provider``, behind the step-up gate. ``stateless``: every POST stands alone, answered in
    JSON; ``default_scopes``: what a client that registers without ``scope`` gets."""
    resource = f"{base}{MCP_PATH}"
    server = MCPServer(
        name=name,
        auth_server_provider=provider,
        auth=AuthSettings.model_validate(
            {
                "issuer_url": base,
                "resource_server_url": resource,
                "required_scopes": [BASE_SCOPE],
                "validate_token_resource": True,
                "client_registration_options": ClientRegistrationOptions(
                    enabled=True, valid_scopes=list(SCOPES), default_scopes=default_scopes
                ),
                "revocation_options": RevocationOptions(enabled=True),
            }
        ),
        log_level="WARNING",
    )
    add_tools(server)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=HOST, stateless_http=stateless, json_response=stateless
    )
    return StepUpGate(
        app,
        verifier=ProviderTokenVerifier(provider),
        path=MCP_PATH,
        resource_metadata_url=prm_url(base, MCP_PATH),
    )


@contextmanager
def sdk_auth_server(*, refuse_revocation: bool = False) -> Iterator[SdkAuthServer]:
    """Start the SDK's server with its own authorization server; stop it afterwards.
    ``refuse_revocation``: its revocation endpoint refuses every request."""
    sock = listening_socket()
    issuer = f"http://{HOST}:{sock.getsockname()[1]}"
    provider = MemoryProvider(ttl=3600, subject="sdk-user", revoke_grant=False)
    app = sdk_auth_app(
        issuer,
        provider,
        name="the mcp SDK's authorization server",
        stateless=False,
        default_scopes=list(SCOPES),
    )
    if refuse_revocation:
        app = RefuseRevocation(app)
    served = serve_in_thread(app, sock, lifespan="on")
    try:
        yield SdkAuthServer(f"{issuer}{MCP_PATH}", issuer, provider)
    finally:
        served.stop()
        sock.close()
