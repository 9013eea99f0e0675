"""Start each authorization server of the interop suite, with the MCP server it fronts, on
127.0.0.1: :func:`start` by name (see :data:`SERVERS`). Each gets listening sockets the test
bound and handed down, so no port is chosen, freed, and taken by something else meanwhile."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.servers.processes import (
    LOOPBACK,
    Server,
    http_ok,
    listening_socket,
    node,
    prm_url,
    spawn,
    start_auth_server,
    start_module_server,
    wait_for,
)

TS_DIR = Path(__file__).resolve().parent / "ts"
# Access-token lifetime, seconds, where the server lets us set it: short, so that the check of a
# 401 waits little for it, yet long enough that a token is never dead at its first use, even
# on a busy machine (where a server issues no refresh token, that would cost a second login).
ACCESS_TTL = 8
RS_CLIENT = ("mcp-rs", "mcp-rs-secret")  # oidc-provider's introspection client (tests/realas)


@dataclass
class Interop:
    """One authorization server and the MCP server (the protected resource) in front of it."""

    name: str
    resource: str  # the MCP endpoint: http://127.0.0.1:<port>/mcp
    issuer: str  # the authorization server's issuer, exactly as the server spells it
    access_ttl: int  # the server's access-token lifetime, seconds
    refresh_tokens: bool = True  # it issues refresh tokens
    revocation: bool = True  # it has an RFC 7009 revocation endpoint
    processes: list[Server] = field(default_factory=list)

    def stop(self) -> None:
        for server in reversed(self.processes):
            server.stop()


def _python(kind: str, workdir: Path, *args: str) -> tuple[str, Server]:
    """A server of ``py_servers.py`` on a socket of its own: its base URL and process."""
    with listening_socket() as sock:
        server = start_module_server(
            f"{kind} (tests/interop/py_servers.py)",
            "tests.interop.py_servers",
            [kind, *args],
            sock,
            workdir,
            kind,
        )
        return f"http://{LOOPBACK}:{sock.getsockname()[1]}", server


def _typescript(provider: str, workdir: Path) -> Interop:
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(
            f"the TypeScript MCP SDK is not installed in {TS_DIR / 'node_modules'}: run "
            "`(cd tests/interop/ts && npm ci)` (bash .ci/run does)"
        )
    with listening_socket() as sock:
        port = int(sock.getsockname()[1])
        env = {
            **os.environ,
            "TS_PROVIDER": provider,
            "AT_TTL": str(ACCESS_TTL),
            "PORT": str(port),
            "LISTEN_FD": str(sock.fileno()),
        }
        server = spawn(
            f"TypeScript SDK, {provider} provider (tests/interop/ts/server.mjs)",
            [node(), "server.mjs"],
            env,
            TS_DIR,
            workdir / f"ts-{provider}.log",
            pass_fds=(sock.fileno(),),
        )
    base = f"http://{LOOPBACK}:{port}"
    wait_for(server, lambda: http_ok(prm_url(base)))
    demo = provider == "demo"
    return Interop(
        name="ts-sdk-demo" if demo else "ts-sdk",
        resource=f"{base}/mcp",
        issuer=f"{base}/",  # the SDK's issuer is a URL object's href: a trailing slash
        access_ttl=3600 if demo else ACCESS_TTL,  # the demo's tokens live an hour, fixed
        refresh_tokens=not demo,
        revocation=not demo,
        processes=[server],
    )


def _oidc_default(workdir: Path) -> Interop:
    """oidc-provider with its own refresh-token policy, an issuer with a path, opaque tokens
    and no RFC 7592, in front of the integration MCP server (tokens by introspection)."""
    with listening_socket() as rs_sock:
        resource = f"http://{LOOPBACK}:{rs_sock.getsockname()[1]}/mcp"
        settings = {
            "AS_HOST": LOOPBACK,
            "AS_PORT": "0",
            "INTERACTION_MODE": "auto",
            "MCP_RESOURCE": resource,
            "MCP_SCOPES": "mcp:tools mcp:write",
            "AT_FORMAT": "opaque",
            "AT_TTL": str(ACCESS_TTL),
            "OIDC_DEFAULTS": "1",
            "ISSUER_PATH": "/oidc",
            "DEVICE_FLOW": "0",
        }
        auth_server, port = start_auth_server(
            workdir, settings, "as", "oidc-provider, its defaults (tests/realas/server.mjs)"
        )
        issuer = f"http://{LOOPBACK}:{port}/oidc"
        meta = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        args = ["resource", "--issuer", issuer, "--introspect", meta["introspection_endpoint"]]
        resource_server = start_module_server(
            "MCP server, introspection (tests/interop/py_servers.py)",
            "tests.interop.py_servers",
            [*args, "--client", ":".join(RS_CLIENT)],
            rs_sock,
            workdir,
            "rs",
        )
    return Interop(
        name="oidc-provider",
        resource=resource,
        issuer=issuer,
        access_ttl=ACCESS_TTL,
        processes=[auth_server, resource_server],
    )


def _in_python(kind: str) -> Callable[[Path], Interop]:
    def start(workdir: Path) -> Interop:
        base, server = _python(kind, workdir, "--ttl", str(ACCESS_TTL))
        issuer = f"{base}/" if kind == "fastmcp" else base  # FastMCP adds a trailing slash
        return Interop(
            name=kind,
            resource=f"{base}/mcp",
            issuer=issuer,
            access_ttl=ACCESS_TTL,
            processes=[server],
        )

    return start


SERVERS: dict[str, Callable[[Path], Interop]] = {
    "ts-sdk": lambda workdir: _typescript("full", workdir),
    "ts-sdk-demo": lambda workdir: _typescript("demo", workdir),
    "mcp-sdk": _in_python("mcp-sdk"),
    "fastmcp": _in_python("fastmcp"),
    "oidc-provider": _oidc_default,
    "authlib": _in_python("authlib"),
}


def start(name: str, workdir: Path) -> Interop:
    return SERVERS[name](workdir)
