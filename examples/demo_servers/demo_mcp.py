"""A small MCP server, built with the ``mcp`` SDK, that is an OAuth resource server.

Why this shape: the quickstart should meet the same server a user meets in the wild, so the
protocol side is the SDK's own ``MCPServer`` over streamable HTTP, and the auth side is the SDK's
resource-server support (``AuthSettings`` + a ``TokenVerifier``): it serves the RFC 9728
protected-resource metadata and answers 401 with ``WWW-Authenticate: Bearer
resource_metadata=...``. What the SDK leaves to us is the verifier: here it checks the demo
authorization server's ES256 JWTs against its JWKS, with ``aud`` = this server's resource URL,
the issuer, and the expiry.

One tool (``whoami``) needs a scope beyond the server-wide one. The MCP spec's signal for that
is an HTTP 403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope=...``; a tool
error inside a JSON-RPC 200 would give the client nothing to act on, so :class:`ScopeGate`
answers those calls at the HTTP layer, before the SDK sees them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import jwt
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BASE_SCOPE",
    "PROFILE_SCOPE",
    "TOOL_SCOPES",
    "JWKSTokenVerifier",
    "ScopeGate",
    "build_mcp_app",
    "build_mcp_server",
]

#: Every request to the MCP endpoint needs this scope.
BASE_SCOPE = "mcp:tools"
#: ``whoami`` needs this one too: ask for it only when you call it (step-up).
PROFILE_SCOPE = "mcp:profile"
#: Tools that need more than :data:`BASE_SCOPE`.
TOOL_SCOPES: Mapping[str, Sequence[str]] = {"whoami": (PROFILE_SCOPE,)}

_MAX_PEEK = 1 << 20  # a tools/call body larger than this is left to the tool's own check


class JWKSTokenVerifier(TokenVerifier):
    """Validates the demo authorization server's JWT access tokens, offline.

    Keys come from the authorization server's JWKS and are cached; an unknown ``kid`` fetches
    them again (at most every ``refetch_interval`` seconds), so a key rotation is picked up
    without letting a stream of junk tokens hammer the authorization server.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str,
        resource: str,
        refetch_interval: float = 10.0,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.resource = resource
        self.refetch_interval = refetch_interval
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys and time.monotonic() - self._fetched_at > self.refetch_interval:
            self._fetched_at = time.monotonic()
            async with httpx2.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.jwks_url)
            response.raise_for_status()
            self._keys = {
                k["kid"]: jwt.PyJWK.from_dict(k, algorithm="ES256").key
                for k in response.json().get("keys", [])
                if isinstance(k, dict) and isinstance(k.get("kid"), str)
            }
        return self._keys.get(kid)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("typ") != "at+jwt":
                return None
            key = await self._key(str(header.get("kid", "")))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, httpx2.HTTPError, ValueError):
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self.resource,  # jwt.decode checked aud == self.resource
            subject=str(claims["sub"]),
            claims={"iss": claims["iss"]},
        )


def build_mcp_server(*, resource_url: str, issuer: str, jwks_url: str) -> MCPServer:
    """The MCP server: three tools, behind the SDK's resource-server auth."""
    verifier = JWKSTokenVerifier(issuer=issuer, jwks_url=jwks_url, resource=resource_url)
    server = MCPServer(
        name="mcp-client-auth demo",
        instructions="A demo server for mcp-client-auth's quickstart.",
        token_verifier=verifier,
        # Validated from strings: AuthSettings keeps a path-less issuer without the trailing
        # slash AnyHttpUrl(...) would add, so the metadata's issuer matches exactly (RFC 8414).
        auth=AuthSettings.model_validate(
            {
                "issuer_url": issuer,
                "resource_server_url": resource_url,
                "required_scopes": [BASE_SCOPE],
                "validate_token_resource": True,
            }
        ),
        log_level="WARNING",
    )

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def whoami() -> dict[str, Any]:
        """Who the access token speaks for, and what it allows (needs the mcp:profile scope)."""
        token = get_access_token()
        # ScopeGate answers 403 before we get here; this is the belt to its braces.
        if token is None or PROFILE_SCOPE not in token.scopes:
            raise PermissionError(f"whoami needs the {PROFILE_SCOPE} scope")
        return {
            "subject": token.subject,
            "client_id": token.client_id,
            "scopes": sorted(token.scopes),
            "expires_at": token.expires_at,
        }

    return server


def build_mcp_app(*, resource_url: str, issuer: str, jwks_url: str) -> ASGIApp:
    """The ASGI app to serve: the SDK's streamable-HTTP app behind :class:`ScopeGate`."""
    server = build_mcp_server(resource_url=resource_url, issuer=issuer, jwks_url=jwks_url)
    path = AnyHttpUrl(resource_url).path or "/"
    app = server.streamable_http_app(streamable_http_path=path, host="127.0.0.1")
    verifier = server._token_verifier  # the one build_mcp_server made
    assert verifier is not None
    return ScopeGate(
        app,
        verifier=verifier,
        path=path,
        base_scopes=(BASE_SCOPE,),
        tool_scopes=TOOL_SCOPES,
        resource_metadata_url=str(build_resource_metadata_url(AnyHttpUrl(resource_url))),
    )


class ScopeGate:
    """Answers 403 ``insufficient_scope`` to ``tools/call`` requests that need more scopes.

    It reads the JSON-RPC body of a POST to the MCP endpoint, and when it names a tool listed in
    ``tool_scopes`` and carries a valid token without those scopes, it answers as RFC 6750 3.1
    and the MCP spec's step-up section say, with every scope the call needs in ``scope``. Any
    other request passes through untouched (the body replayed), so the SDK still owns the 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        path: str,
        base_scopes: Sequence[str],
        tool_scopes: Mapping[str, Sequence[str]],
        resource_metadata_url: str,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.path = path
        self.base_scopes = tuple(base_scopes)
        self.tool_scopes = tool_scopes
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        messages, more = await _read_body(receive)
        replay = _replaying(messages, receive)
        needed = set() if more else self._needed_scopes(_joined(messages))
        if needed:
            granted = await self._granted_scopes(scope)
            if granted is not None and not needed <= granted:
                await self._forbid(send, sorted(set(self.base_scopes) | granted | needed))
                return
        await self.app(scope, replay, send)

    def _needed_scopes(self, body: bytes) -> set[str]:
        try:
            message = json.loads(body)
        except ValueError:
            return set()
        messages = message if isinstance(message, list) else [message]
        needed: set[str] = set()
        for m in messages:
            if isinstance(m, dict) and m.get("method") == "tools/call":
                params = m.get("params")
                name = params.get("name") if isinstance(params, dict) else None
                if isinstance(name, str):
                    needed.update(self.tool_scopes.get(name, ()))
        return needed

    async def _granted_scopes(self, scope: Scope) -> set[str] | None:
        """The valid token's scopes; ``None`` without one (the SDK then answers 401)."""
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"),
            "",
        )
        if not header.lower().startswith("bearer "):
            return None
        info = await self.verifier.verify_token(header[7:])
        return set(info.scopes) if info is not None else None

    async def _forbid(self, send: Send, scopes: Sequence[str]) -> None:
        challenge = (
            f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}", '
            f'resource_metadata="{self.resource_metadata_url}", '
            f'error_description="this tool needs more scopes"'
        )
        body = json.dumps(
            {"error": "insufficient_scope", "error_description": "this tool needs more scopes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> tuple[list[Message], bool]:
    """Read up to ``_MAX_PEEK`` bytes of the body; the messages, and whether more remain."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, False
        if size > _MAX_PEEK:
            return messages, True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read, then the real ones."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _joined(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
