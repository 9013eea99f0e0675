"""The remote side, legacy HTTP+SSE (protocol 2024-11-05): one long GET event stream carries
every message from the server; its first ``endpoint`` event names the URL to POST messages to.

Kept as a fallback for servers that predate streamable HTTP (``--transport``). The endpoint
must be on the server's own origin: a server cannot send the host's messages, or the token,
elsewhere. The access token goes only to URLs at or below the one the proxy was given, so give
the proxy a URL that covers both the stream and the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from . import jsonrpc
from .errors import RelayError
from .pending import Pending
from .sse import EventTooLarge, events
from .streamable import Emit, Remote

logger = logging.getLogger("mcp_client_auth.proxy")

ENDPOINT_WAIT = 30.0
RENEW_ID = "mcp-client-auth-renew"  # the replayed initialize: its answer is not the host's


class NotLegacySse(RelayError):
    """The URL did not answer with an event stream naming an endpoint."""


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
                async for event in events(response.aiter_lines()):
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
        endpoint = urljoin(self.url, data.strip())
        if urlsplit(endpoint)[:2] != urlsplit(self.url)[:2]:
            raise NotLegacySse(f"{self.url} named an endpoint on another origin; refused")
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
        await self._ensure_connected(message)
        endpoint = self._endpoint
        if endpoint is None:
            raise RelayError(f"the event stream from {self.url} closed")
        waiter = (pending, asyncio.Event())
        self._waiting.add(waiter)
        try:
            headers = {**self.headers, "content-type": "application/json"}
            response = await self.client.post(
                endpoint, content=jsonrpc.encode(message), headers=headers
            )
            if response.status_code >= 400:
                raise RelayError(f"{endpoint} answered HTTP {response.status_code}")
            if pending:
                await waiter[1].wait()
            if pending:
                raise RelayError(f"the event stream from {self.url} closed before the answer")
        finally:
            self._waiting.discard(waiter)

    async def _ensure_connected(self, message: jsonrpc.Message) -> None:
        """Re-open a dropped stream; a new stream is a new session, so the host's
        ``initialize`` is replayed first (its answer stays with the proxy)."""
        async with self._connect_lock:
            if self._endpoint is not None:
                return
            await self.connect()
            if self.initialize is None or jsonrpc.method_of(message) == "initialize":
                return
            replay = {**self.initialize, "id": RENEW_ID}
            silent = Pending(replay)
            waiter = (silent, asyncio.Event())
            self._waiting.add(waiter)
            try:
                assert self._endpoint is not None
                await self.client.post(self._endpoint, content=jsonrpc.encode(replay))
                await waiter[1].wait()
            finally:
                self._waiting.discard(waiter)
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await self.client.post(self._endpoint, content=jsonrpc.encode(initialized))

    def start_listening(self) -> None:
        """The stream is always open in this transport."""

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
