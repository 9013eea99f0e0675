"""Serve an ASGI app for real, with uvicorn in a thread of the test's process, on a socket the
test bound to 127.0.0.1 first (so the app can know its own origin before it serves, and nothing
else can take the port meanwhile)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from .processes import LOOPBACK

STARTUP_TIMEOUT = 60.0  # generous: a busy machine starts uvicorn slowly


@dataclass
class Served:
    """A uvicorn server running in a thread; ``stop`` ends it."""

    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: Literal["on", "off"] = "off",
    certfile: str | None = None,
    log_level: str = "warning",
) -> Served:
    """Serve ``app`` on ``sock`` (a socket bound to 127.0.0.1, as ``listening_socket`` binds
    one); return once it accepts requests. ``lifespan="on"`` for apps that start work at
    start-up (the MCP SDK's session manager); ``certfile`` serves TLS."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan=lifespan,
        interface="asgi3",
        loop="asyncio",
        http="h11",
        ssl_certfile=certfile,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    served = Served(int(sock.getsockname()[1]), server, thread)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            served.stop()
            raise RuntimeError(f"uvicorn did not start serving {app!r}")
        time.sleep(0.01)
    return served
