"""The remote side, legacy HTTP+SSE (protocol 2024-11-05): one long GET event stream carries
every message from the server; its first ``endpoint`` event names the URL to POST messages to.

Kept as a fallback for servers that predate streamable HTTP (``--transport``). The access
token goes only to URLs at or below the one the proxy was given (the provider's rule, judged on
the path as the server will see it), so the endpoint must be there too: one on another origin,
or beside the stream rather than under it (the ``mcp`` SDK's default ``/sse`` with
``/messages/``), is refused before anything is posted to it, with an error that says which URL
to give instead. Sending the host's messages there without the token would only earn a 401, and
widening the token to it would hand the token to a URL the user never named.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from urllib.parse import urljoin

import httpx

from ..url_rules import path_covers
from . import jsonrpc
from .errors import RelayError
from .pending import Pending
from .sse import EventTooLarge, events, lines_of
from .streamable import Emit, Remote

logger = logging.getLogger("mcp_client_auth.proxy")

ENDPOINT_WAIT = 30.0
RENEW_ID = "mcp-client-auth-renew"  # the replayed initialize: its answer is not the host's


class NotLegacySse(RelayError):
    """The URL did not answer with an event stream naming an endpoint."""


class EndpointRefused(RelayError):
    """The server named a messages endpoint the access token is not for."""


class SessionGone(RelayError):
    """The endpoint answered 404: the server no longer knows the session (it restarted); the
    message was not taken."""


class LegacySse(Remote):
    """The HTTP+SSE session: one stream for the server's messages, POSTs to its endpoint."""

    def __init__(
        self, url: str, client: httpx.AsyncClient, emit: Emit, *, headers: Mapping[str, str]
    ) -> None:
        super().__init__(url, client, emit, headers=headers)
        self._endpoint: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: set[tuple[Pending, asyncio.Event]] = set()
        self._connect_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the stream and wait for its endpoint; :class:`NotLegacySse` if it has none."""
        found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(found))
        try:
            self._endpoint = await asyncio.wait_for(asyncio.shield(found), ENDPOINT_WAIT)
        except asyncio.TimeoutError:
            self._reader.cancel()
            raise NotLegacySse(f"{self.url} sent no endpoint event") from None

    async def _read(self, found: asyncio.Future[str]) -> None:
        headers = {**self.headers, "accept": "text/event-stream"}
        try:
            async with self.client.stream("GET", self.url, headers=headers) as response:
                kind = response.headers.get("content-type", "").split(";")[0].strip()
                if response.status_code != 200 or kind != "text/event-stream":
                    raise NotLegacySse(
                        f"{self.url} answered HTTP {response.status_code} ({kind or 'no type'}), "
                        "not an HTTP+SSE event stream"
                    )
                async for event in events(lines_of(response.aiter_text())):
                    if event.event == "endpoint" and not found.done():
                        found.set_result(self._check_endpoint(event.data))
                    elif event.event == "message" and event.data:
                        self._relay(event.data)
        except (httpx.TransportError, EventTooLarge, RelayError) as exc:
            if not found.done():
                found.set_exception(exc)
            logger.info("the event stream from %s ended: %s", self.url, exc)
        except Exception as exc:  # an auth failure surfaces at connect
            if not found.done():
                found.set_exception(exc)
        finally:
            if not found.done():
                found.set_exception(NotLegacySse(f"{self.url} closed the stream at once"))
            self._endpoint = None
            for _, done in self._waiting:
                done.set()

    def _check_endpoint(self, data: str) -> str:
        """The endpoint's absolute URL, if the token may go there with the host's messages."""
        try:
            endpoint = urljoin(self.url, data.strip())
            given, named = httpx.URL(self.url), httpx.URL(endpoint)
        except (ValueError, httpx.InvalidURL):
            raise EndpointRefused(
                f"{self.url} named a messages endpoint that is not a URL"
            ) from None
        raw_path = named.raw_path.partition(b"?")[0].decode("ascii", "replace")
        where = f"{named.scheme}://{named.netloc.decode('ascii', 'replace')}{raw_path}"
        if (named.scheme, named.host, named.port) != (given.scheme, given.host, given.port):
            raise EndpointRefused(
                f"{self.url} named {where} for the host's messages: refused, it is on another "
                "origin; the proxy sends the messages and the access token only to the server "
                "it was given"
            )
        if not path_covers(given.raw_path.partition(b"?")[0].decode("ascii"), raw_path):
            raise EndpointRefused(
                f"{self.url} named {where} for the host's messages: refused, it is not at or "
                f"below {self.url}, the only URL the access token is for. Give the proxy the "
                "URL of an event stream whose messages endpoint is at or below it (for the "
                "mcp SDK's sse_app: sse_path at the resource's path, message_path below it)"
            )
        return endpoint

    def _relay(self, data: str) -> None:
        try:
            answer = jsonrpc.decode(data)
        except jsonrpc.NotJsonRpc as exc:
            logger.warning("dropped an event from %s that is not JSON-RPC: %s", self.url, exc)
            return
        for pending, done in list(self._waiting):
            pending.answered(answer)
            if not pending:
                done.set()
        if not (isinstance(answer, dict) and answer.get("id") == RENEW_ID):
            self.emit(answer)

    async def send(self, message: jsonrpc.Message, pending: Pending) -> None:
        if jsonrpc.method_of(message) == "initialize":
            self.initialize = dict(message)
        for attempt in (1, 2):
            replayed = await self._ensure_connected(message)
            if replayed and jsonrpc.method_of(message) == "notifications/initialized":
                return  # the replayed handshake has just sent it
            endpoint = self._endpoint
            if endpoint is None:
                raise RelayError(f"the event stream from {self.url} closed")
            try:
                await self._post_and_wait(endpoint, message, pending)
                return
            except SessionGone:
                if attempt == 2:
                    raise
                logger.info("%s forgot the session; opening a new one", self.url)
                await self._drop(endpoint)

    async def _post_and_wait(
        self, endpoint: str, message: jsonrpc.Message, pending: Pending
    ) -> None:
        """POST ``message`` with the user's headers, then wait until the stream has carried
        an answer to each of its requests (or closed)."""
        waiter = (pending, asyncio.Event())
        self._waiting.add(waiter)
        try:
            headers = {**self.headers, "content-type": "application/json"}
            response = await self.client.post(
                endpoint, content=jsonrpc.encode(message), headers=headers
            )
            if response.status_code == 404:
                raise SessionGone(f"{endpoint} answered HTTP 404: the session is gone")
            if response.status_code >= 400:
                raise RelayError(f"{endpoint} answered HTTP {response.status_code}")
            if pending:
                await waiter[1].wait()
            if pending:
                raise RelayError(f"the event stream from {self.url} closed before the answer")
        finally:
            self._waiting.discard(waiter)

    async def _ensure_connected(self, message: jsonrpc.Message) -> bool:
        """Re-open a dropped stream; a new stream is a new session, so the host's
        ``initialize`` is replayed first (its answer stays with the proxy). Whether it was."""
        async with self._connect_lock:
            if self._endpoint is not None:
                return False
            await self.connect()
            if self.initialize is None or jsonrpc.method_of(message) == "initialize":
                return False
            assert self._endpoint is not None
            try:
                replay = {**self.initialize, "id": RENEW_ID}
                await self._post_and_wait(self._endpoint, replay, Pending(replay))
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await self._post_and_wait(self._endpoint, initialized, Pending(initialized))
            except RelayError as exc:
                await self.close()  # a session without its handshake: the next message retries
                raise RelayError(f"the new session at {self.url} could not start: {exc}") from None
            return True

    async def _drop(self, endpoint: str) -> None:
        """Close the stream of a session the server has forgotten, unless another message
        has already replaced it."""
        async with self._connect_lock:
            if self._endpoint == endpoint:
                await self.close()

    def start_listening(self) -> None:
        """The stream is always open in this transport."""

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
