"""A sync request's total deadline: its sockets are shut down when the time is up.

A sync read cannot be interrupted from its own thread, and the read timeout bounds only each
wait: a server that trickles its headers a byte at a time, each well inside the timeout, would
hold the flow for as long as it liked. The watch learns each socket the request opens through
the transport's ``trace`` request extension (httpcore's, which httpx and httpx2 pass on), and a
timer thread shuts those sockets down at the deadline. The blocked read then ends at once, as
a closed connection, which the sender reports as the deadline.

``shutdown`` rather than ``close``: a socket closed under a thread that is reading it would not
wake that thread, and its file descriptor could be reused by the next ``open``; a shut-down
socket stays the reader's to close.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any

__all__ = ["DeadlineWatch"]

# the trace events whose result is a new network stream: the TCP connection, then its TLS layer
_NEW_STREAM = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})


class DeadlineWatch:
    """``with DeadlineWatch(seconds) as watch:`` send with ``extensions={"trace": watch.trace}``;
    ``watch.expired`` says whether the time ran out."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> DeadlineWatch:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """The transport's trace hook: remember each socket the request opens."""
        if event not in _NEW_STREAM:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would drop
    # the TLS object under the thread that is reading through it
    with contextlib.suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
