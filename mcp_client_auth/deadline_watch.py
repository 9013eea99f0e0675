"""A sync request's total deadline: the caller stops waiting when it passes, and the sockets of
the client that sent it are shut down.

A sync read cannot be interrupted from its own thread, and a read timeout bounds only each
wait: a server that trickles its headers a byte at a time, each well inside the timeout, would
hold the flow for as long as it liked. Name resolution and each address's connect attempt are
not interruptible at all. So the exchange runs in a worker thread and the caller waits for it
until the deadline only (:func:`within`), as an event loop's cancel scope would. At the
deadline the caller raises, and shuts down every socket the client has opened (learned through
the transport's ``trace`` request extension, httpcore's, which httpx and httpx2 pass on): a
worker blocked reading one then ends at once, and a kept-alive connection the request reused
is covered as well as a new one. A worker still resolving a name or connecting ends when that
call returns, and nothing waits for it.

``shutdown`` rather than ``close``: a socket closed under a thread that is reading it would not
wake that thread, and its file descriptor could be reused by the next ``open``; a shut-down
socket stays its reader's to close.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ClientSockets", "DeadlinePassed", "sockets_of", "within"]

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The work did not finish within its time; the caller no longer waits for it."""


class ClientSockets:
    """The sockets one client has opened, each kept while it is alive: the TCP connection,
    its TLS layer, through a proxy or not."""

    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._shut = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """The transport's trace hook: remember each new network stream's socket."""
        if not event.endswith(("connect_tcp.complete", "start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._shut:  # the deadline passed while this connection was being made
                _shut(sock)
            else:
                self._sockets.add(sock)

    def shut_down(self) -> None:
        """End every read and write on the client's sockets, now and from now on."""
        with self._lock:
            self._shut = True
            for sock in list(self._sockets):
                _shut(sock)


_by_client: weakref.WeakKeyDictionary[Any, ClientSockets] = weakref.WeakKeyDictionary()
_by_client_lock = threading.Lock()


def sockets_of(client: Any) -> ClientSockets:
    """The :class:`ClientSockets` of ``client`` (made on first use, gone with the client)."""
    with _by_client_lock:
        found = _by_client.get(client)
        if found is None:
            found = _by_client[client] = ClientSockets()
        return found


def within(seconds: float, sockets: ClientSockets, work: Callable[[], T]) -> T:
    """``work()``'s result or error, run in a worker thread; :class:`DeadlinePassed` once
    ``seconds`` have passed without it, the client's ``sockets`` then shut down."""
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller, which raises it
            outcome.append((False, exc))
        finally:
            done.set()

    worker = threading.Thread(target=run, name="mcp-client-auth-flow-request", daemon=True)
    worker.start()
    if not done.wait(seconds):
        sockets.shut_down()
        raise DeadlinePassed
    succeeded, value = outcome[0]
    if succeeded:
        result: T = value
        return result
    raise value


def _shut(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would drop
    # the TLS object under the thread that is reading through it
    with contextlib.suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
