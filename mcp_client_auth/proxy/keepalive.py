"""A lean HTTP/1.1 transport for the proxy's client: kept-alive connections on asyncio streams,
framed by h11 (the parser httpx's own transport uses).

Why not httpx's default transport: its connection pool runs every request through anyio's
locks, cancel scopes and checkpoints, each one more turn of the event loop, and on a fast
server that costs more than everything else the relay does. This transport does what the
proxy needs and no more: one request per connection at a time, idle connections reused per
origin for a few seconds (as httpx's pool does), the body streamed as it arrives (event
streams stay open for hours), TLS with the same context httpx builds (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` honoured). The proxy uses httpx's own transport instead where the
environment names an HTTP proxy, so that ``HTTPS_PROXY`` and ``NO_PROXY`` keep their exact
httpx meaning.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import h11
import httpx

from ..tls_contexts import verifying_context

READ_SIZE = 64 * 1024
# As httpx's own pool: an idle connection is not reused after this many seconds (a server or a
# middlebox may have dropped it without a word, and a POST cannot be sent twice), and at most
# this many wait per origin.
KEEPALIVE_EXPIRY = 5.0
MAX_IDLE = 20
# The largest response head read (as httpx's own transport allows): big cookies or a long
# challenge pass; a head that keeps growing is a protocol error, not memory spent.
MAX_HEAD = 100 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})  # sent again on a fresh connection
Origin = tuple[str, str, int]
Release = Callable[["_Connection", bool], None]
T = TypeVar("T")


async def _within(timeout: float | None, step: Awaitable[T]) -> T:
    """``step``, given up after ``timeout`` seconds (no timer at all for None)."""
    if timeout is None:
        return await step
    return await asyncio.wait_for(step, timeout)


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over :class:`_Connection`s: a new one when no idle one
    to the origin is fresh; errors as httpx's own (``ConnectError``, ``ReadError``,
    ``RemoteProtocolError``...), so callers cannot tell the transports apart."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"the proxy speaks http and https, not {url.scheme}")
        # The ASCII name httpx encoded (IDNA 2008), not ``url.host``'s Unicode text, which the
        # socket and ssl layers would encode by the older IDNA 2003 into another domain.
        host = url.raw_host.decode("ascii")
        origin = (url.scheme, host, url.port or DEFAULT_PORTS[url.scheme])
        timeouts = request.extensions.get("timeout", {})
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        connection = self._reusable(origin)
        if connection is not None:
            try:
                return await connection.exchange(request, body, timeouts, self._release)
            except _NotAnswered:  # the server closed it as it went: once more, if that is safe
                if request.method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    ) from None
        connection = await self._connect(origin, timeouts.get("connect"))
        try:
            return await connection.exchange(request, body, timeouts, self._release)
        except _NotAnswered:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None

    def _reusable(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            self._discard(connection)
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = verifying_context(httpx)
            context = self._ssl_context
        opening = asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None
        )
        try:
            reader, writer = await _within(timeout, opening)
        except (TimeoutError, asyncio.TimeoutError):
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        connection = _Connection(origin, reader, writer)
        self._open.add(connection)
        return connection

    def _release(self, connection: _Connection, reusable: bool) -> None:
        idle = self._idle.setdefault(connection.origin, [])
        if reusable and connection in self._open and len(idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.close()

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._discard(connection)
        self._idle.clear()


class _NotAnswered(Exception):
    """A reused connection ended before any byte of the answer (the server closed it as the
    request went out): an idempotent request may go again; a POST may have been acted on."""


class _Connection:
    """One HTTP/1.1 connection: a request, its answer read to the end, then the next."""

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.origin = origin
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._used = False
        self._read_timeout: float | None = None
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        fresh = time.monotonic() - self.idle_since < KEEPALIVE_EXPIRY
        return fresh and not (self._writer.is_closing() or _has_arrived(self._reader))

    async def exchange(
        self,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
        release: Release,
    ) -> httpx.Response:
        reused, self._used = self._used, True
        self._read_timeout = timeouts.get("read")
        target = request.url.raw_path
        headers = list(request.headers.raw)
        if body and not request.headers.get("content-length"):
            headers.append((b"content-length", str(len(body)).encode()))
        try:
            data = self._request_bytes(request, target, headers, body)
            self._writer.write(data)
            event = await self._next_event(request)
            while isinstance(event, h11.InformationalResponse):
                event = await self._next_event(request)
        except _Ended:
            release(self, False)
            if reused:
                raise _NotAnswered from None
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        except BaseException:
            release(self, False)
            raise
        if not isinstance(event, h11.Response):  # a switch of protocols nobody asked for
            release(self, False)
            raise httpx.RemoteProtocolError(
                "the server answered with something other than an HTTP/1.1 response",
                request=request,
            )
        return httpx.Response(
            event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, request, release),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
            request=request,
        )

    def _request_bytes(
        self, request: httpx.Request, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> bytes:
        """The request as h11 frames it; what h11 will not send (a line break in a header
        value...) is httpx's :class:`httpx.LocalProtocolError`, as its own transport says it."""
        try:
            data = self._h11.send(
                h11.Request(method=request.method, target=target, headers=headers)
            )
            if body:
                data += self._h11.send(h11.Data(data=body))
            return data + self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None

    async def _next_event(self, request: httpx.Request) -> Any:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await _within(self._read_timeout, self._reader.read(READ_SIZE))
            except (TimeoutError, asyncio.TimeoutError):
                raise httpx.ReadTimeout(
                    "the server did not answer in time", request=request
                ) from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
            if not data and self._h11.their_state is h11.SEND_RESPONSE:
                raise _Ended
            self._h11.receive_data(data)

    async def body(self, request: httpx.Request) -> AsyncIterator[bytes]:
        while True:
            event = await self._next_event(request)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly with nothing after it: bytes past the end of
        the answer (a second answer to one request) would be read as the next one's."""
        if (
            self._h11.our_state is h11.DONE
            and self._h11.their_state is h11.DONE
            and self._h11.trailing_data == (b"", False)
        ):
            self._h11.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self._writer.close()


def _has_arrived(reader: asyncio.StreamReader) -> bool:
    """Whether an idle connection has anything waiting: its end, or bytes nobody asked for
    (they would be read as the next request's answer). Asked without waiting: a read finds
    buffered bytes or the end at once; one that would wait is given up before it does."""
    reading = reader.read(1)
    try:
        reading.send(None)
    except StopIteration:
        return True  # a byte, or b"" at the end
    except Exception:  # the connection failed while idle
        return True
    reading.close()  # it would have waited: nothing is there
    return False


class _Ended(Exception):
    """The connection ended before the response began."""


class _Body(httpx.AsyncByteStream):
    def __init__(self, connection: _Connection, request: httpx.Request, release: Release) -> None:
        self._connection = connection
        self._request = request
        self._release = release
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._connection.body(self._request):
                yield chunk
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._release(self._connection, self._connection.reusable())
