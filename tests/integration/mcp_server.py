"""A real MCP server for the end-to-end tests: the ``mcp`` SDK's ``MCPServer`` over streamable
HTTP on 127.0.0.1, an OAuth resource server of the REAL authorization server (oidc-provider,
``tests/realas/server.mjs``).

- The SDK's own resource-server support does the auth: ``AuthSettings`` (issuer, resource URL,
  required scope ``mcp:tools``, ``validate_token_resource``) and a ``TokenVerifier``. The SDK
  serves the RFC 9728 metadata and answers 401 with ``WWW-Authenticate: Bearer ...
  resource_metadata=...``.
- :class:`JWKSVerifier` checks oidc-provider's RFC 9068 JWT access tokens offline: RS256 against
  the issuer's JWKS (fetched again for an unknown ``kid``, so a restarted authorization server's
  new key is picked up), ``typ`` ``at+jwt``, the issuer, ``aud`` = this server's resource URL,
  the expiry.
- ``save_note`` needs ``mcp:write`` on top (step-up): :class:`StepUpGate` answers such a
  ``tools/call`` with 403 ``insufficient_scope`` and every scope it needs, as the MCP
  specification's step-up section says, before the SDK sees the call.

Run: ``python -m tests.integration.mcp_server --issuer http://127.0.0.1:PORT --port N``; it
serves ``http://127.0.0.1:N/mcp``. ``--log-requests`` prints one JSON line per HTTP request.
``--legacy-sse`` serves the HTTP+SSE transport (2024-11-05) instead, through the SDK's
``sse_app`` (see :func:`legacy_sse_app`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from pydantic import AnyHttpUrl
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HOST = "127.0.0.1"
BASE_SCOPE = "mcp:tools"  # every request to the MCP endpoint
WRITE_SCOPE = "mcp:write"  # save_note: asked for only when it is called (step-up)
SCOPES = (BASE_SCOPE, WRITE_SCOPE)  # what the authorization server must know: MCP_SCOPES
TOOL_SCOPES: Mapping[str, Sequence[str]] = {"save_note": (WRITE_SCOPE,)}
MAX_PEEK = 1 << 20


class JWKSVerifier(TokenVerifier):
    """oidc-provider's JWT access tokens, checked against its JWKS."""

    def __init__(self, *, issuer: str, resource: str, refetch_interval: float = 1.0) -> None:
        self.issuer = issuer
        self.resource = resource
        self.refetch_interval = refetch_interval
        self._keys: dict[str, Any] = {}
        self._jwks_uri: str | None = None
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()  # one fetch at a time; the others wait for its keys

    async def _key(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > self.refetch_interval
            if kid not in self._keys and stale:  # an unknown key: a new one, or junk
                self._fetched_at = time.monotonic()
                self._keys = await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> dict[str, Any]:
        async with httpx2.AsyncClient(timeout=5.0) as client:
            if self._jwks_uri is None:
                meta = await client.get(f"{self.issuer}/.well-known/oauth-authorization-server")
                meta.raise_for_status()
                self._jwks_uri = str(meta.json()["jwks_uri"])
            response = await client.get(self._jwks_uri)
        response.raise_for_status()
        return {
            k["kid"]: jwt.PyJWK.from_dict(k).key
            for k in response.json().get("keys", [])
            if isinstance(k, dict) and isinstance(k.get("kid"), str)
        }

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256" or str(header.get("typ", "")).lower() not in (
                "at+jwt",
                "application/at+jwt",
            ):
                return None
            key = await self._key(str(header.get("kid", "")))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, httpx2.HTTPError, ValueError, KeyError):
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


def build_server(
    *,
    resource: str,
    issuer: str,
    verifier: TokenVerifier | None = None,
    announce: bool = False,
) -> tuple[MCPServer, TokenVerifier]:
    """The server and its token verifier: ``verifier``, else oidc-provider's JWTs by JWKS.
    ``announce``: also the ``announce`` tool (a message on the connection's own stream)."""
    verifier = verifier or JWKSVerifier(issuer=issuer, resource=resource)
    server = MCPServer(
        name="mcp-client-auth integration server",
        token_verifier=verifier,
        # From strings: a path-less issuer keeps its exact spelling (no trailing slash).
        auth=AuthSettings.model_validate(
            {
                "issuer_url": issuer,
                "resource_server_url": resource,
                "required_scopes": [BASE_SCOPE],
                "validate_token_resource": True,
            }
        ),
        log_level="WARNING",
    )

    add_tools(server)
    if announce:

        @server.tool(name="announce")
        async def announce_change(ctx: Context) -> str:
            """Tell the client, on the connection's own stream (the GET stream over
            streamable HTTP), that the tool list changed: a message no request asked for."""
            await ctx.session.send_tool_list_changed()
            return "announced"

    return server, verifier


def add_tools(server: MCPServer) -> None:
    """The tools every test server offers: ``echo``, ``whoami``, and ``save_note``, which
    needs ``mcp:write`` (the step-up)."""

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def whoami() -> dict[str, Any]:
        """Who the access token speaks for, and its scopes."""
        token = get_access_token()
        assert token is not None
        return {"subject": token.subject, "client_id": token.client_id, "scopes": token.scopes}

    @server.tool()
    def save_note(text: str) -> str:
        """Pretend to store a note (needs mcp:write)."""
        token = get_access_token()
        if token is None or WRITE_SCOPE not in token.scopes:  # StepUpGate answers first
            raise PermissionError(f"save_note needs the {WRITE_SCOPE} scope")
        return f"saved: {text}"


def build_app(
    *,
    resource: str,
    issuer: str,
    log_requests: bool = False,
    verifier: TokenVerifier | None = None,
    stateless: bool = False,
    json_response: bool | None = None,
    announce: bool = False,
    legacy_sse: bool = False,
) -> ASGIApp:
    """``stateless``: every POST stands alone (no session, no GET stream); ``json_response``:
    answers in JSON, not SSE (default: as ``stateless``); ``legacy_sse``: the HTTP+SSE
    transport of 2024-11-05 instead (see :func:`legacy_sse_app`)."""
    server, verifier = build_server(
        resource=resource, issuer=issuer, verifier=verifier, announce=announce
    )
    path = AnyHttpUrl(resource).path or "/"
    if legacy_sse:
        legacy = legacy_sse_app(server, path)
        return RequestLog(legacy) if log_requests else legacy
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=path,
        host=HOST,
        stateless_http=stateless,
        json_response=stateless if json_response is None else json_response,
    )
    app = StepUpGate(
        app,
        verifier=verifier,
        path=path,
        resource_metadata_url=str(build_resource_metadata_url(AnyHttpUrl(resource))),
    )
    return RequestLog(app) if log_requests else app


def legacy_sse_app(server: MCPServer, path: str) -> ASGIApp:
    """The SDK's HTTP+SSE app with two event streams sharing one messages endpoint,
    ``{path}/messages/``: at ``{path}`` itself (a URL that covers the endpoint: the token may
    go there) and at ``{path}/sse`` (the SDK's own naming: the endpoint is beside the stream,
    not under it)."""
    base = path.rstrip("/")
    app = server.sse_app(sse_path=base or "/", message_path=f"{base}/messages/", host=HOST)
    stream = next(r for r in app.routes if isinstance(r, Route) and r.path == (base or "/"))
    app.routes.append(Route(f"{base}/sse", endpoint=stream.endpoint, methods=["GET"]))
    return app


class StepUpGate:
    """403 ``insufficient_scope`` for a ``tools/call`` of a tool its valid token may not call."""

    def __init__(
        self, app: ASGIApp, *, verifier: TokenVerifier, path: str, resource_metadata_url: str
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.path = path
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more and size <= MAX_PEEK:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            more = message["type"] == "http.request" and bool(message.get("more_body"))
        needed = set() if more else _needed_scopes(b"".join(m.get("body", b"") for m in messages))
        if needed:
            granted = await self._granted(scope)
            if granted is not None and not needed <= granted:
                await self._forbid(send, sorted({BASE_SCOPE} | granted | needed))
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _granted(self, scope: Scope) -> set[str] | None:
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"), ""
        )
        if not header.lower().startswith("bearer "):
            return None  # the SDK answers 401
        token = await self.verifier.verify_token(header[7:])
        return set(token.scopes) if token is not None else None

    async def _forbid(self, send: Send, scopes: Sequence[str]) -> None:
        challenge = (
            f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}", '
            f'resource_metadata="{self.resource_metadata_url}", '
            'error_description="this tool needs more scopes"'
        )
        body = json.dumps({"error": "insufficient_scope"}).encode()
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


def _needed_scopes(body: bytes) -> set[str]:
    try:
        message = json.loads(body)
    except ValueError:
        return set()
    needed: set[str] = set()
    for m in message if isinstance(message, list) else [message]:
        if isinstance(m, dict) and m.get("method") == "tools/call":
            params = m.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str):
                needed.update(TOOL_SCOPES.get(name, ()))
    return needed


LOGGED_HEADERS = ("mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id", "x-test")


def _logged_headers(scope: Scope) -> dict[str, Any]:
    """The MCP headers of a request (and the tests' own ``X-Test``); whether it had a session."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    found: dict[str, Any] = {k: headers[k] for k in LOGGED_HEADERS if k in headers}
    found["session"] = "mcp-session-id" in headers
    return found


class RequestLog:
    """One JSON line per HTTP request on stdout: method, path, status, the MCP headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                line = {"method": scope["method"], "path": scope["path"]}
                print(
                    json.dumps({**line, **_logged_headers(scope), "status": message["status"]}),
                    flush=True,
                )
            await send(message)

        await self.app(scope, receive, logging_send)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="the authorization server's issuer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument(
        "--fd",
        type=int,
        help="serve on this inherited listening socket (bound to --port by the parent)",
    )
    parser.add_argument("--log-requests", action="store_true")
    parser.add_argument("--stateless", action="store_true", help="no sessions, no GET stream")
    parser.add_argument("--json-response", action="store_true", help="JSON answers, not SSE")
    parser.add_argument("--announce", action="store_true", help="add the announce tool")
    parser.add_argument(
        "--legacy-sse", action="store_true", help="the HTTP+SSE transport (2024-11-05) only"
    )
    args = parser.parse_args(argv)
    resource = f"http://{HOST}:{args.port}{args.path}"
    app = build_app(
        resource=resource,
        issuer=args.issuer,
        log_requests=args.log_requests,
        stateless=args.stateless,
        json_response=args.json_response,
        announce=args.announce,
        legacy_sse=args.legacy_sse,
    )
    print(json.dumps({"event": "starting", "resource": resource}), flush=True)
    if args.fd is not None:  # the test's socket: its port was never free for another
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])
    else:
        uvicorn.run(app, host=HOST, port=args.port, log_level="warning", lifespan="on")
    sys.exit(0)


if __name__ == "__main__":
    main()
