"""Minimal protected MCP-like resource server (RFC 9728 + RFC 6750) for e2e tests.

Environment (all optional):
  RS_HOST          bind address (default 127.0.0.1)
  RS_PORT          port (default 9100)
  RS_FD            a listening socket's file descriptor, inherited: serve on it (bound to
                   RS_HOST:RS_PORT by the parent) instead of binding one
  AS_ISSUER        authorization server issuer (default http://127.0.0.1:9000)
  RS_VALIDATION    jwt | introspect (default jwt)
                   jwt: verify RFC 9068 JWT access tokens with the AS JWKS
                   introspect: RFC 7662 introspection with RS_CLIENT_ID/RS_CLIENT_SECRET
  RS_CLIENT_ID / RS_CLIENT_SECRET   introspection credentials (default mcp-rs / mcp-rs-secret)
  MCP_SCOPES       scopes advertised in PRM (default "mcp:tools mcp:read")
  RS_REQUIRED_SCOPE scope required to call /mcp (default mcp:tools)
"""

from __future__ import annotations

import os
import socket
import time

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

HOST = os.environ.get("RS_HOST", "127.0.0.1")
PORT = int(os.environ.get("RS_PORT", "9100"))
ISSUER = os.environ.get("AS_ISSUER", "http://127.0.0.1:9000")
VALIDATION = os.environ.get("RS_VALIDATION", "jwt")
RS_CLIENT_ID = os.environ.get("RS_CLIENT_ID", "mcp-rs")
RS_CLIENT_SECRET = os.environ.get("RS_CLIENT_SECRET", "mcp-rs-secret")
SCOPES = os.environ.get("MCP_SCOPES", "mcp:tools mcp:read").split()
REQUIRED_SCOPE = os.environ.get("RS_REQUIRED_SCOPE", "mcp:tools")

BASE = f"http://{HOST}:{PORT}"
RESOURCE = f"{BASE}/mcp"
# RFC 9728 section 3.1: well-known suffix inserted between host and path.
PRM_URL = f"{BASE}/.well-known/oauth-protected-resource/mcp"

_as_meta: dict | None = None
_jwks_client: jwt.PyJWKClient | None = None


def as_metadata() -> dict:
    global _as_meta
    if _as_meta is None:
        r = httpx.get(f"{ISSUER}/.well-known/oauth-authorization-server", timeout=5)
        r.raise_for_status()
        _as_meta = r.json()
    return _as_meta


def jwks_client() -> jwt.PyJWKClient:
    global _jwks_client
    if _jwks_client is None:
        _jwks_client = jwt.PyJWKClient(as_metadata()["jwks_uri"], cache_keys=True)
    return _jwks_client


def prm_document() -> dict:
    return {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": "test MCP resource",
    }


async def prm(request: Request) -> JSONResponse:
    return JSONResponse(prm_document())


def challenge(
    status: int, error: str | None = None, description: str | None = None
) -> JSONResponse:
    parts = [f'resource_metadata="{PRM_URL}"', f'scope="{REQUIRED_SCOPE}"']
    if error:
        parts.insert(0, f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    body = {"error": error or "unauthorized"}
    if description:
        body["error_description"] = description
    return JSONResponse(
        body, status_code=status, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)}
    )


class InvalidToken(Exception):
    pass


def validate_jwt(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise InvalidToken(f"not a JWT: {e}") from e
    if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise InvalidToken(f"unexpected typ {header.get('typ')!r}")
    try:
        key = jwks_client().get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=RESOURCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as e:
        raise InvalidToken(str(e)) from e


async def validate_introspect(token: str) -> dict:
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.post(
            as_metadata()["introspection_endpoint"],
            data={"token": token},
            auth=(RS_CLIENT_ID, RS_CLIENT_SECRET),
        )
    if r.status_code != 200:
        raise InvalidToken(f"introspection HTTP {r.status_code}: {r.text}")
    data = r.json()
    if not data.get("active"):
        raise InvalidToken("token not active")
    aud = data.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if RESOURCE not in auds:
        raise InvalidToken(f"audience {aud!r} != {RESOURCE}")
    if data.get("token_type") not in (None, "Bearer"):
        raise InvalidToken(f"token_type {data.get('token_type')!r}")
    return data


async def mcp(request: Request) -> JSONResponse:
    authz = request.headers.get("authorization", "")
    if not authz.lower().startswith("bearer "):
        return challenge(401)
    token = authz[7:].strip()
    try:
        claims = validate_jwt(token) if VALIDATION == "jwt" else await validate_introspect(token)
    except InvalidToken as e:
        return challenge(401, "invalid_token", str(e).replace('"', "'"))
    scopes = set((claims.get("scope") or "").split())
    if REQUIRED_SCOPE and REQUIRED_SCOPE not in scopes:
        return challenge(403, "insufficient_scope", f"need {REQUIRED_SCOPE}")
    info = {
        "sub": claims.get("sub"),
        "client_id": claims.get("client_id"),
        "scope": claims.get("scope"),
        "aud": claims.get("aud"),
        "exp": claims.get("exp"),
        "expires_in": (claims.get("exp") or 0) - int(time.time()),
        "validated_by": VALIDATION,
    }
    if request.method == "POST":
        try:
            msg = await request.json()
        except Exception:
            msg = {}
        return JSONResponse(
            {
                "jsonrpc": "2.0",
                "id": msg.get("id"),
                "result": {"echo": msg.get("method"), "auth": info},
            }
        )
    return JSONResponse({"ok": True, "auth": info})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "resource": RESOURCE})


app = Starlette(
    routes=[
        Route("/.well-known/oauth-protected-resource", prm),
        Route("/.well-known/oauth-protected-resource/mcp", prm),
        Route("/mcp", mcp, methods=["GET", "POST"]),
        Route("/healthz", health),
    ]
)

if __name__ == "__main__":
    log_level = os.environ.get("RS_LOG_LEVEL", "warning")
    if os.environ.get("RS_FD"):  # the test's socket: its port was never free for another
        listening = socket.socket(fileno=int(os.environ["RS_FD"]))
        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[listening])
    else:
        uvicorn.run(app, host=HOST, port=PORT, log_level=log_level)
