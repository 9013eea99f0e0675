"""The relay: host lines in, remote answers out, and an answer for every request whatever
happens in between.

Each host message is relayed in its own task, so a long tool call does not hold up the next
request; the handshake (``initialize``, ``notifications/initialized``) is relayed before the
next line is read, because everything after it needs the session it opens. A failure becomes a
JSON-RPC error for each request of the message still waiting (a notification's failure is only
logged: it has no id to answer), and the proxy goes on with the next line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httpx

from ..errors import MCPAuthError
from . import jsonrpc
from .errors import RelayError
from .headers import STATELESS_VERSIONS, declared_version
from .pending import Pending
from .stdio import HostOutput

logger = logging.getLogger("mcp_client_auth.proxy")

HANDSHAKE = frozenset({"initialize", "notifications/initialized"})  # relayed in order


class Transport(Protocol):
    async def send(self, message: jsonrpc.Message, pending: Pending) -> None: ...
    async def close(self) -> None: ...


class Relay:
    def __init__(
        self,
        connect: Callable[[jsonrpc.Message, Pending], Awaitable[tuple[Transport, bool]]],
        output: HostOutput,
        *,
        url: str,
        login_hint: str,
    ) -> None:
        """``connect(first, pending)``: the transport to relay through, chosen on the first
        message as ``--transport`` says, and whether it relayed ``first`` already."""
        self._connect = connect
        self._transport: Transport | None = None
        self._output = output
        self._url = url
        self._login_hint = login_hint
        self._tasks: dict[asyncio.Task[None], Any] = {}
        self._stateless_posts: dict[str, asyncio.Task[None]] = {}
        self._connecting = asyncio.Lock()
        self._chosen_on_handshake = False  # the transport was chosen on an ``initialize``
        self._stateless_seen = False  # a request of the stateless revision went through

    async def run(self, lines: AsyncIterator[bytes | None]) -> None:
        """Relay until the host closes stdin, then end the session."""
        try:
            async for line in lines:
                await self._take(line)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._transport is not None:
                with contextlib.suppress(Exception):
                    await self._transport.close()

    async def _take(self, line: bytes | None) -> None:
        if line is None:
            self._output.send(
                jsonrpc.error(None, jsonrpc.PARSE_ERROR, "Parse error: the line is too long")
            )
            return
        if not line.strip():
            return
        try:
            message = jsonrpc.decode(line)
        except jsonrpc.NotJsonRpc as exc:
            logger.warning("the host sent a line that is not JSON-RPC: %s", exc)
            self._output.send(jsonrpc.error(None, exc.code, str(exc)))
            return
        if self._cancels_stateless_post(message):
            return
        if jsonrpc.method_of(message) in HANDSHAKE:
            await self.relay(message)  # what follows needs the session it opens
            return
        task = asyncio.get_running_loop().create_task(self.relay(message))
        self._tasks[task] = message
        task.add_done_callback(self._tasks.pop)
        self._note_stateless_post(message, task)

    async def relay(self, message: jsonrpc.Message) -> None:
        pending = Pending(message)
        try:
            transport, sent = await self._transport_for(message, pending)
            if not sent:
                await transport.send(message, pending)
        except asyncio.CancelledError:  # the host cancelled it, or went away: no answer
            raise
        except RelayError as exc:
            hint = f". {self._login_hint}" if exc.code == jsonrpc.AUTH_FAILED else ""
            self._fail(pending, exc.code, f"{exc}{hint}")
        except MCPAuthError as exc:
            self._fail(pending, jsonrpc.AUTH_FAILED, f"{exc}. {self._login_hint}")
        except httpx.TransportError as exc:
            self._fail(
                pending,
                jsonrpc.SERVER_UNREACHABLE,
                f"cannot reach the MCP server at {self._url}: {_describe(exc)}",
            )
        except Exception as exc:
            logger.exception("relaying a message to %s failed", self._url)
            self._fail(pending, jsonrpc.INTERNAL_ERROR, f"the proxy failed: {type(exc).__name__}")
        else:
            if pending:
                self._fail(pending, jsonrpc.TRANSPORT_ERROR, f"{self._url} sent no answer")

    async def _transport_for(
        self, message: jsonrpc.Message, pending: Pending
    ) -> tuple[Transport, bool]:
        """The transport, chosen on the first message (which it may have relayed already);
        messages arriving meanwhile wait for the choice, not for each other's answers.

        Only the handshake tells the transports apart, so a choice made on anything else (a
        client probing ``server/discover`` before falling back to ``initialize``) is made
        again on the first ``initialize``."""
        transport = self._transport
        if transport is not None and self._chosen_on_handshake:
            return transport, False
        async with self._connecting:
            starting = jsonrpc.method_of(message) == "initialize"
            choose_again = starting and not self._chosen_on_handshake
            if self._transport is not None and not choose_again:
                return self._transport, False
            previous, self._transport = self._transport, None
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous.close()
            self._transport, sent = await self._connect(message, pending)
            self._chosen_on_handshake = starting
            return self._transport, sent

    def _fail(self, pending: Pending, code: int, text: str) -> None:
        if not pending:
            logger.warning("%s", text)
        for request_id in pending.remaining():
            self._output.send(jsonrpc.error(request_id, code, text))
        pending.clear()

    # In the stateless revision a request is cancelled by closing its stream: there are no
    # notifications from client to server over HTTP.

    def _cancels_stateless_post(self, message: jsonrpc.Message) -> bool:
        """Whether ``message`` is a cancellation the stateless revision carries by closing
        the request's stream (done here) rather than as a message (never sent)."""
        if jsonrpc.method_of(message) != "notifications/cancelled":
            return False
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        task = self._stateless_posts.get(jsonrpc.encode(request_id).decode())
        if task is not None:
            task.cancel()
        return task is not None or self._stateless_seen

    def _note_stateless_post(self, message: jsonrpc.Message, task: asyncio.Task[None]) -> None:
        if jsonrpc.is_request(message) and declared_version(message) in STATELESS_VERSIONS:
            self._stateless_seen = True
            key = jsonrpc.encode(message["id"]).decode()
            self._stateless_posts[key] = task
            task.add_done_callback(lambda _: self._stateless_posts.pop(key, None))


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
