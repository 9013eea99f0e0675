"""The loopback listener a browser login's answer comes back to (RFC 8252).

Serving runs on whichever asyncio loop calls :meth:`CallbackListener.serve` (nothing is tied
to the loop that bound the socket, :mod:`.loopback`) and waits for the one request that
matters: ``GET {path}`` carrying this login's ``state``.

Everything else is answered and forgotten: other paths get 404 (browsers ask for
``/favicon.ico``), a wrong or missing ``state`` gets a page saying so and the wait goes on,
peers that are not loopback are dropped, and a ``Host`` that is not a loopback name is refused
(a web page that rebinds its own DNS name to 127.0.0.1 cannot drive the listener). Each
connection has its own bounded read with a deadline, so a flood of junk requests cannot keep
the real callback out.

An ``error=`` answer carrying this login's ``state`` shows an error page and ends the wait with
:class:`AuthorizationError` carrying the server's ``error`` and ``error_description``; the flow
never sees that URL. Without this login's ``state`` it is treated as any other stranger's request
(400, the wait goes on): anything on this machine, a web page included, can reach the listener,
and only the authorization server knows the state (see :mod:`mcp_client_auth.callback`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthorizationError
from .loopback import ListenTarget, bind_redirect
from .pages import (
    CONTENT_SECURITY_POLICY,
    Page,
    bad_request_page,
    error_page,
    finished_page,
    method_not_allowed_page,
    not_found_page,
    refused_page,
    state_mismatch_page,
    success_page,
)
from .paste import PasteRejected, check_answer

__all__ = [
    "HEAD_LIMIT",
    "HEAD_TIMEOUT",
    "WRITE_TIMEOUT",
    "CallbackListener",
    "CallbackOutcome",
    "is_loopback_peer",
    "open_listener",
]

HEAD_TIMEOUT = 10.0  # seconds a connection may take to send its request line and headers
WRITE_TIMEOUT = 5.0
HEAD_LIMIT = 16 * 1024  # bytes of request line and headers
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback_peer(peer: object) -> bool:
    """Whether a socket peer address (``(host, port, ...)``) is on this machine."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return False
    try:
        address = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def open_listener(
    redirect_uri: str | None, *, port: int | None, redirect_port: int | None
) -> CallbackListener | None:
    """The bound listener for ``redirect_uri`` (see :func:`~.loopback.bind_redirect`); its
    ``redirect_uri`` is the one to send. None where there is nothing to listen on."""
    bound = bind_redirect(redirect_uri, port=port, redirect_port=redirect_port)
    return None if bound is None else CallbackListener(*bound)


class CallbackOutcome:
    """What a request decided: the login's answer (a URL), its failure, or nothing."""

    __slots__ = ("error", "url")

    def __init__(self, url: str | None = None, error: AuthorizationError | None = None) -> None:
        self.url = url
        self.error = error


class CallbackListener:
    """Serves a login's loopback redirect URI until this login's answer arrives.

    ``serve`` starts answering on the running loop; the first request that carries this
    login's ``state`` (and passes the flow's ``check``) sets the ``result`` future to its
    :class:`CallbackOutcome`. ``aclose`` stops listening and drops every connection.
    """

    def __init__(self, sock: socket.socket, target: ListenTarget, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self._sock: socket.socket | None = sock
        self._target = target
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False
        self._result: asyncio.Future[CallbackOutcome] | None = None
        self._state: str | None = None
        self._check: Callable[[str], object] | None = None
        self._note: Callable[[str], None] = lambda text: None
        self._claimed = False

    @property
    def port(self) -> int:
        return self._target.port

    @property
    def fixed_by_user(self) -> bool:
        """Whether the user fixed the port (for a browser elsewhere, such as an SSH tunnel)."""
        return self._target.fixed_by == "port"

    @property
    def connections(self) -> frozenset[asyncio.Task[Any]]:
        """The handlers of the connections it holds open now."""
        return frozenset(self._connections)

    @property
    def serving(self) -> bool:
        """Whether it answers requests: started, and not closed."""
        return self._server is not None

    @property
    def active(self) -> bool:
        """Whether it is serving, or a connection it accepted is still open."""
        return self._server is not None or bool(self._connections)

    async def serve(
        self,
        result: asyncio.Future[CallbackOutcome],
        *,
        state: str,
        check: Callable[[str], object] | None,
        note: Callable[[str], None],
    ) -> None:
        """Start answering requests; this login's answer goes to ``result``. ``note`` shows
        the user a line about a request that was ignored."""
        self._result, self._state, self._check, self._note = result, state, check, note
        if self._sock is not None:
            self._server = await asyncio.start_server(
                self._serve_connection, sock=self._sock, limit=HEAD_LIMIT
            )
            self._sock = None  # the server owns and closes it now

    async def aclose(self) -> None:
        """Stop listening and drop every open connection. Safe to call twice."""
        self._closing = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Abort rather than cancel: a handler whose connection is gone returns on its own
        # (cancelling it makes Python 3.11's asyncio.streams log a spurious error).
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._connections)
        if tasks:
            _, stragglers = await asyncio.wait(tasks, timeout=2.0)
            for task in stragglers:
                task.cancel()
        # Closing a transport closes its socket on a later turn of the loop; take those
        # turns now, so nothing is left open when the caller's loop ends.
        for _ in range(3):
            await asyncio.sleep(0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._closing or not is_loopback_peer(writer.get_extra_info("peername")):
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._writers.add(writer)
        outcome: CallbackOutcome | None = None
        answered = False
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except asyncio.LimitOverrunError:
                await self._send(
                    writer, bad_request_page("The request was too large."), head_only=False
                )
                return
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            method, page, outcome = self._answer(head)
            await self._send(writer, page, head_only=method == "HEAD")
            answered = True
        except (ConnectionError, OSError):
            pass
        finally:
            if outcome is not None and self._result is not None and not self._result.done():
                self._result.set_result(outcome)
            if answered:
                writer.close()  # flushes the page, then closes
            else:
                writer.transport.abort()
            self._writers.discard(writer)
            if task is not None:
                self._connections.discard(task)

    async def _send(self, writer: asyncio.StreamWriter, page: Page, *, head_only: bool) -> None:
        headers = (
            f"HTTP/1.1 {page.status} {page.reason}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page.body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Pragma: no-cache\r\n"
            "Referrer-Policy: no-referrer\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\n"
            f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head_only else page.body))
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    def _answer(self, head: bytes) -> tuple[str, Page, CallbackOutcome | None]:
        """The page for one request and, for this login's answer, the outcome."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "", bad_request_page("The request was not understood."), None
        method, target_text, _ = parts
        host = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "host":
                host = value.strip().lower()
        if not self._host_allowed(host):
            return method, bad_request_page("This address only answers to 127.0.0.1."), None
        target = urlsplit(target_text)
        if target.path != self._target.path:
            return method, not_found_page(), None
        if method not in ("GET", "HEAD"):
            return method, method_not_allowed_page(), None
        if self._claimed:
            return method, finished_page(), None
        assert self._state is not None
        try:
            check_answer(target.query, state=self._state)
        except PasteRejected as exc:
            if exc.kind == "state":
                self._note(
                    "Ignored a sign-in answer that does not belong to this login "
                    "(its state is missing or does not match)."
                )
                return method, state_mismatch_page(), None
            return method, bad_request_page(exc.for_browser), None
        except AuthorizationError as exc:
            if method == "HEAD":  # a prefetch must not end the login
                return method, error_page(exc.error or "error", exc.description), None
            self._claimed = True
            page = error_page(exc.error or "error", exc.description)
            return method, page, CallbackOutcome(error=exc)
        redirect = urlsplit(self.redirect_uri)
        url = urlunsplit((redirect.scheme, redirect.netloc, target.path, target.query, ""))
        if self._check is not None:
            try:
                self._check(url)  # the flow's own verdict (iss, RFC 9207), before "signed in"
            except AuthorizationError as exc:
                if method == "HEAD":
                    return method, refused_page(), None
                self._claimed = True
                return method, refused_page(), CallbackOutcome(error=exc)
        if method == "HEAD":
            return method, success_page(), None
        self._claimed = True
        return method, success_page(), CallbackOutcome(url=url)

    def _host_allowed(self, host: str | None) -> bool:
        """DNS-rebinding defence: only loopback names, on our port."""
        if host is None:
            return False
        allowed = {f"{name}:{self._target.port}" for name in _LOOPBACK_NAMES}
        allowed.add(urlsplit(self.redirect_uri).netloc.lower())
        return host in allowed
