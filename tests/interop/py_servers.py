"""The Python authorization servers of the interop suite, each in front of a real MCP server,
run as ``python -m tests.interop.py_servers KIND --port N --fd FD --ttl SECONDS``:

- ``mcp-sdk``: the ``mcp`` SDK's own authorization-server routes (``mcp.server.auth``: RFC 8414
  metadata, RFC 7591 registration, authorization, token, RFC 7009 revocation) over the
  in-memory provider of ``tests/servers/sdk_provider.py``, which approves every request and
  revokes a grant's two tokens together, in the same app as the SDK's ``MCPServer`` (which
  checks tokens through the provider, as the SDK does it): ``sdk_auth_app`` of
  ``tests/integration/sdk_auth_server.py``.
- ``fastmcp``: FastMCP's ``InMemoryOAuthProvider`` as shipped, in front of a FastMCP server; the
  one setting changed is its access-token lifetime (a module constant), to ``--ttl``.
- ``authlib``: an Authlib authorization server (``authlib_as.py``) and the integration MCP
  server, which checks tokens by RFC 7662 introspection, in one app.
- ``resource``: only the integration MCP server, checking tokens by RFC 7662 introspection at
  ``--introspect`` with ``--client`` ``id:secret``, for an authorization server elsewhere
  (``--issuer``).

Each answers ``tools/call`` of ``save_note`` without ``mcp:write`` with 403 ``insufficient_scope``
(``StepUpGate``), is stateless (every POST stands alone, answered in JSON), and serves on the
listening socket ``--fd`` that the test bound to ``127.0.0.1:--port``.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

import httpx2
import uvicorn
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp

from tests.integration.mcp_server import BASE_SCOPE, HOST, SCOPES, StepUpGate, build_app
from tests.integration.sdk_auth_server import MCP_PATH, sdk_auth_app
from tests.servers.sdk_provider import MemoryProvider


def gated(app: ASGIApp, verifier: TokenVerifier, resource: str) -> ASGIApp:
    """``app`` behind the step-up gate (403 ``insufficient_scope`` for ``save_note``)."""
    return StepUpGate(
        app,
        verifier=verifier,
        path=MCP_PATH,
        resource_metadata_url=str(build_resource_metadata_url(AnyHttpUrl(resource))),
    )


def mcp_sdk_app(base: str, ttl: int) -> ASGIApp:
    provider = MemoryProvider(ttl=ttl, subject="interop-user", revoke_grant=True)
    name = "interop: mcp SDK authorization server"
    return sdk_auth_app(base, provider, name=name, stateless=True)


def fastmcp_app(base: str, ttl: int) -> ASGIApp:
    from fastmcp import FastMCP
    from fastmcp.server.auth.auth import ClientRegistrationOptions as FastRegistration
    from fastmcp.server.auth.auth import RevocationOptions as FastRevocation
    from fastmcp.server.auth.providers import in_memory

    in_memory.DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS = ttl  # the provider's only lifetime knob
    provider = in_memory.InMemoryOAuthProvider(
        base_url=base,
        client_registration_options=FastRegistration(enabled=True, valid_scopes=list(SCOPES)),
        revocation_options=FastRevocation(enabled=True),
        required_scopes=[BASE_SCOPE],
    )
    server = FastMCP("interop: FastMCP InMemoryOAuthProvider", auth=provider)

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def save_note(text: str) -> str:
        """Pretend to store a note (needs mcp:write, checked by the step-up gate)."""
        return f"saved: {text}"

    app = server.http_app(path=MCP_PATH, stateless_http=True, json_response=True)
    return gated(app, provider, base + MCP_PATH)


class IntrospectionVerifier:
    """Access tokens checked by RFC 7662 introspection with the resource server's own client
    credentials: active, not expired, issued for ``resource`` where the server says so."""

    def __init__(self, endpoint: str, client: tuple[str, str], resource: str) -> None:
        self.endpoint = endpoint
        self.client = client
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient(timeout=10.0) as http:
            response = await http.post(self.endpoint, data={"token": token}, auth=self.client)
        if response.status_code != 200:
            return None
        claims: dict[str, Any] = response.json()
        expires_at = claims.get("exp")
        if not claims.get("active") or (isinstance(expires_at, int) and expires_at < time.time()):
            return None
        audience = claims.get("aud")
        if audience is not None and self.resource not in (
            audience if isinstance(audience, list) else [audience]
        ):
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=expires_at if isinstance(expires_at, int) else None,
            resource=self.resource,
            subject=str(claims.get("sub", "")),
        )


def resource_app(base: str, issuer: str, introspect: str, client: tuple[str, str]) -> ASGIApp:
    resource = base + MCP_PATH
    verifier = IntrospectionVerifier(introspect, client, resource)
    return build_app(resource=resource, issuer=issuer, verifier=verifier, stateless=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["mcp-sdk", "fastmcp", "authlib", "resource"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--ttl", type=int, default=300, help="access-token lifetime, seconds")
    parser.add_argument("--issuer", help="resource: the authorization server's issuer")
    parser.add_argument("--introspect", help="resource: the introspection endpoint")
    parser.add_argument("--client", default="", help="resource: introspection id:secret")
    args = parser.parse_args()
    base = f"http://{HOST}:{args.port}"
    if args.kind == "mcp-sdk":
        app = mcp_sdk_app(base, args.ttl)
    elif args.kind == "fastmcp":
        app = fastmcp_app(base, args.ttl)
    elif args.kind == "authlib":
        from .authlib_as import authlib_app

        app = authlib_app(base, args.ttl)
    else:
        client_id, _, secret = args.client.partition(":")
        app = resource_app(base, args.issuer, args.introspect, (client_id, secret))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])


if __name__ == "__main__":
    main()
