"""Start the demo authorization server and MCP server on free loopback ports, in threads.

Why threads and pre-bound sockets: the quickstart and the tests need both servers up in one
process, on ports nobody else holds, with each server knowing its own URL before it starts (the
issuer is the authorization server's origin; the MCP server's resource URL is its token
audience). So the sockets are bound first, on 127.0.0.1 port 0, and uvicorn serves on them.
Nothing binds any other interface.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from .demo_as import DemoAuthorizationServer
from .demo_mcp import build_mcp_app

__all__ = ["DemoServers", "ServedApp", "loopback_socket", "serve_app", "start_demo_servers"]

HOST = "127.0.0.1"


@dataclass
class DemoServers:
    """The running pair: their URLs, the authorization server object, and ``stop()``."""

    issuer: str
    mcp_url: str
    authorization_server: DemoAuthorizationServer
    _servers: list[uvicorn.Server] = field(default_factory=list, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def resource_metadata_url(self) -> str:
        origin, _, path = self.mcp_url.partition("://")[2].partition("/")
        return f"http://{origin}/.well-known/oauth-protected-resource/{path}"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask both servers to exit and wait for their threads."""
        for server in self._servers:
            server.should_exit = True
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> DemoServers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class ServedApp:
    """One ASGI app served on a loopback port: its origin, and ``stop()``."""

    origin: str
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def loopback_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 and a free port: bind first, so an app can be built
    knowing its own origin (``http://127.0.0.1:PORT``) before it is served."""
    return _bind()


def serve_app(app: ASGIApp, sock: socket.socket, startup_timeout: float = 15.0) -> ServedApp:
    """Serve ``app`` on ``sock`` (from :func:`loopback_socket`) in a thread; return once up."""
    server, thread = _serve(app, sock, "demo-app")
    served = ServedApp(f"http://{HOST}:{sock.getsockname()[1]}", server, thread)
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            served.stop()
            raise RuntimeError("the app did not start")
        time.sleep(0.01)
    return served


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _serve(app: ASGIApp, sock: socket.socket, name: str) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    return server, thread


def start_demo_servers(
    *,
    auto_approve: bool = True,
    access_token_ttl: int = 3600,
    extra_resources: Sequence[str] = (),
    mcp_path: str = "/mcp",
    startup_timeout: float = 15.0,
) -> DemoServers:
    """Start both servers and return once they answer.

    ``auto_approve=False`` makes ``/authorize`` show the consent page. ``extra_resources`` are
    other resource URLs the authorization server will issue tokens for (the tests use one to get
    a token with the wrong audience).
    """
    as_sock, mcp_sock = _bind(), _bind()
    issuer = f"http://{HOST}:{as_sock.getsockname()[1]}"
    mcp_url = f"http://{HOST}:{mcp_sock.getsockname()[1]}{mcp_path}"
    authorization_server = DemoAuthorizationServer(
        issuer,
        resources=[mcp_url, *extra_resources],
        auto_approve=auto_approve,
        access_token_ttl=access_token_ttl,
    )
    mcp_app = build_mcp_app(resource_url=mcp_url, issuer=issuer, jwks_url=f"{issuer}/jwks.json")
    demo = DemoServers(issuer=issuer, mcp_url=mcp_url, authorization_server=authorization_server)
    for app, sock, name in (
        (authorization_server.app, as_sock, "demo-authorization-server"),
        (mcp_app, mcp_sock, "demo-mcp-server"),
    ):
        server, thread = _serve(app, sock, name)
        demo._servers.append(server)
        demo._threads.append(thread)
    deadline = time.monotonic() + startup_timeout
    while not all(s.started for s in demo._servers):
        if time.monotonic() > deadline or not all(t.is_alive() for t in demo._threads):
            demo.stop()
            raise RuntimeError("the demo servers did not start")
        time.sleep(0.01)
    return demo
