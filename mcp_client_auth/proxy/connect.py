"""Which transport to speak to the remote server, as ``--transport`` says.

``http-first`` (the default) tries streamable HTTP and falls back to the legacy HTTP+SSE
transport when the server refuses the ``initialize`` POST the way a legacy server does (400,
404 or 405), as the specification's backwards-compatibility section describes; ``sse-first``
the other way round; ``http-only`` and ``sse-only`` never fall back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import httpx

from . import jsonrpc
from .pending import Pending
from .streamable import Emit, NotStreamableHttp, StreamableHttp

if TYPE_CHECKING:
    from .legacy import LegacySse

logger = logging.getLogger("mcp_client_auth.proxy")

TransportChoice = Literal["http-first", "sse-first", "http-only", "sse-only"]
TRANSPORTS: tuple[TransportChoice, ...] = ("http-first", "sse-first", "http-only", "sse-only")


class Connector:
    """Makes the transport on the host's first message."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        emit: Emit,
        *,
        headers: Mapping[str, str],
        choice: TransportChoice = "http-first",
    ) -> None:
        self.url = url
        self.client = client
        self.emit = emit
        self.headers = headers
        self.choice = choice

    async def __call__(
        self, first: jsonrpc.Message, pending: Pending
    ) -> tuple[StreamableHttp | LegacySse, bool]:
        """The transport, and whether ``first`` was already relayed through it (the
        ``initialize`` that told streamable HTTP from HTTP+SSE)."""
        if self.choice == "http-only":
            return self._streamable(), False
        if self.choice == "sse-only":
            return await self._legacy(), False
        if self.choice == "sse-first":
            from .legacy import NotLegacySse

            try:
                return await self._legacy(), False
            except NotLegacySse as exc:
                logger.info("%s; trying streamable HTTP", exc)
                return self._streamable(), False
        if jsonrpc.method_of(first) != "initialize":
            return self._streamable(), False  # only the handshake can tell them apart
        streamable = self._streamable()
        try:
            await streamable.send(first, pending)
        except NotStreamableHttp as exc:
            logger.info("%s; trying the HTTP+SSE transport", exc)
            return await self._legacy(), False
        return streamable, True

    def _streamable(self) -> StreamableHttp:
        return StreamableHttp(self.url, self.client, self.emit, headers=self.headers)

    async def _legacy(self) -> LegacySse:
        from .legacy import LegacySse  # the older transport: imported when a server needs it

        legacy = LegacySse(self.url, self.client, self.emit, headers=self.headers)
        await legacy.connect()
        return legacy
