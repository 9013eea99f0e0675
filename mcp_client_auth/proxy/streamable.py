"""The remote side, streamable HTTP: each host message is one POST; the answers come back as
one JSON body or as an SSE stream, relayed event by event.

Session rules, per protocol revision:

- ``initialize`` is POSTed without a session; the ``Mcp-Session-Id`` its answer carries (if
  any) goes on every later request, and the negotiated version in ``MCP-Protocol-Version``
  (2025-06-18 on). In the stateless revision (2026-07-28) there is neither: each request
  names its version in ``params._meta`` (see :mod:`.headers`).
- A 404 to a request that carried a session id means the server ended that session: the spec
  has the client start a new one with a fresh ``initialize``. The proxy replays the host's own
  ``initialize`` (its answer stays with the proxy), sends ``notifications/initialized``, and
  sends the message again, once. The host sees nothing but the latency; if the server refuses,
  the host gets a JSON-RPC error.
- After the handshake the proxy opens the server's GET stream, where offered (a 405 says it is
  not), for messages the server sends on its own; a dropped stream is re-opened with
  ``Last-Event-ID``. A POST's SSE stream cut before its answer is resumed the same way, when
  the server gave event ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from . import jsonrpc
from .errors import RelayError, SessionLost
from .headers import STATELESS_VERSIONS, message_headers
from .pending import Pending
from .sse import EventTooLarge, events, lines_of

logger = logging.getLogger("mcp_client_auth.proxy")

Emit = Callable[[jsonrpc.Message], None]

MAX_JSON_BODY = 64 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
RESUME_ATTEMPTS = 3
LISTEN_BACKOFF_CAP = 30.0
JSON_AND_SSE = "application/json, text/event-stream"


class NotStreamableHttp(RelayError):
    """The server refused the streamable HTTP handshake the way a legacy (HTTP+SSE) server
    does: 400, 404 or 405 to the ``initialize`` POST."""


class Remote:
    """What both transports hold: the server's URL, the authorized client, where the
    server's messages go, the user's headers, and the host's ``initialize`` (replayed to
    start a new session when the server lost the old one)."""

    def __init__(
        self, url: str, client: httpx.AsyncClient, emit: Emit, *, headers: Mapping[str, str]
    ) -> None:
        self.url = url
        self.client = client
        self.emit = emit
        self.headers = dict(headers)
        self.initialize: dict[str, Any] | None = None


class StreamableHttp(Remote):
    """One MCP session (or none, stateless) with the remote server over streamable HTTP."""

    def __init__(
        self, url: str, client: httpx.AsyncClient, emit: Emit, *, headers: Mapping[str, str]
    ) -> None:
        super().__init__(url, client, emit, headers=headers)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._post_url = httpx.URL(url)  # parsed once, not on every message
        self._renew_lock = asyncio.Lock()
        self._renewals = 0
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    # -- the host's messages -------------------------------------------------------------

    async def send(self, message: jsonrpc.Message, pending: Pending) -> None:
        """POST ``message``; relay every answer to the host, marking ``pending``."""
        starting = jsonrpc.method_of(message) == "initialize"
        if starting:
            self.initialize = dict(message)
            self.session_id = None
        for attempt in range(2):
            session = self.session_id
            try:
                await self._post(message, pending, self.emit, starting=starting)
                break
            except _SessionExpired:
                if attempt or session is None:
                    raise SessionLost(
                        f"{self.url} ended the MCP session and refused a new one (HTTP 404)"
                    ) from None
                await self.renew(session)
        if jsonrpc.method_of(message) == "notifications/initialized":
            self.start_listening()

    async def _post(
        self, message: jsonrpc.Message, pending: Pending, emit: Emit, *, starting: bool
    ) -> None:
        headers = {**self.headers, **message_headers(message, self.protocol_version)}
        headers["accept"] = JSON_AND_SSE
        headers["content-type"] = "application/json"
        session = self.session_id
        if session is not None and not starting:
            headers["mcp-session-id"] = session
        request = self.client.build_request(
            "POST", self._post_url, content=jsonrpc.encode(message), headers=headers
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.status_code == 404 and session is not None and not starting:
                raise _SessionExpired
            await self._answers(response, message, pending, emit, starting=starting)
        finally:
            await response.aclose()

    async def _answers(
        self,
        response: httpx.Response,
        message: jsonrpc.Message,
        pending: Pending,
        emit: Emit,
        *,
        starting: bool,
    ) -> None:
        status = response.status_code
        if status >= 400:
            await self._refused(response, pending, emit, starting=starting)
            return
        if starting:
            self._adopt_session(response)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if status == 202 or not pending:
            return  # accepted; a notification or a response of the host's gets no body
        if kind == "application/json":
            body = await _read_capped(response, MAX_JSON_BODY)
            try:
                answer = jsonrpc.decode(body)
            except jsonrpc.NotJsonRpc as exc:
                raise RelayError(f"{self.url} answered with malformed JSON: {exc}") from None
            self._deliver(answer, pending, emit, starting=starting)
        elif kind == "text/event-stream":
            await self._stream(response, pending, emit, starting=starting)
        else:
            raise RelayError(
                f"{self.url} answered HTTP {status} with content type {kind or '(none)'}, "
                "neither JSON nor an event stream"
            )

    async def _refused(
        self, response: httpx.Response, pending: Pending, emit: Emit, *, starting: bool
    ) -> None:
        """A 4xx/5xx: the server's own JSON-RPC error where it sent one, else the status."""
        status = response.status_code
        body = await _read_capped(response, MAX_ERROR_BODY, truncate=True)
        try:
            answer = jsonrpc.decode(body)
        except jsonrpc.NotJsonRpc:
            answer = None
        if isinstance(answer, dict) and "error" in answer and pending:
            if answer.get("id") is None and pending.only() is not None:
                answer = {**answer, "id": pending.only()}
            pending.answered(answer)
            emit(answer)
            if not pending:
                return
        if starting and status in (400, 404, 405):
            raise NotStreamableHttp(
                f"{self.url} refused the streamable HTTP handshake (HTTP {status})"
            )
        if status in (401, 403):
            raise RelayError(
                f"{self.url} answered HTTP {status}: not authorized even after signing in "
                "(check the account's access)",
                jsonrpc.AUTH_FAILED,
            )
        raise RelayError(f"{self.url} answered HTTP {status}")

    def _deliver(
        self, answer: jsonrpc.Message, pending: Pending, emit: Emit, *, starting: bool
    ) -> None:
        if starting and isinstance(answer, dict):
            result = answer.get("result")
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            if isinstance(version, str):
                self.protocol_version = version
        pending.answered(answer)
        emit(answer)

    async def _stream(
        self, response: httpx.Response, pending: Pending, emit: Emit, *, starting: bool
    ) -> None:
        last_id = await self._relay_events(response, pending, emit, starting=starting)
        attempts = 0
        while pending and last_id is not None and attempts < RESUME_ATTEMPTS and self._resumable:
            attempts += 1
            logger.info("the answer stream was cut; resuming after event %s", last_id)
            async with self.client.stream(
                "GET", self.url, headers=self._get_headers(last_id)
            ) as resumed:
                kind = resumed.headers.get("content-type", "").split(";")[0].strip().lower()
                if resumed.status_code != 200 or kind != "text/event-stream":
                    break
                last_id = await self._relay_events(resumed, pending, emit, starting=starting)
        if pending:
            raise RelayError(f"{self.url} ended the answer stream before answering")

    @property
    def _resumable(self) -> bool:
        return self.protocol_version not in STATELESS_VERSIONS

    async def _relay_events(
        self, response: httpx.Response, pending: Pending, emit: Emit, *, starting: bool
    ) -> str | None:
        """Relay the stream's messages until every pending request is answered or it ends;
        the last event id seen."""
        last_id: str | None = None
        try:
            async for event in events(lines_of(response.aiter_text())):
                last_id = event.id
                if not event.data or event.event != "message":
                    continue
                try:
                    answer = jsonrpc.decode(event.data)
                except jsonrpc.NotJsonRpc as exc:
                    logger.warning(
                        "dropped an event from %s that is not JSON-RPC: %s", self.url, exc
                    )
                    continue
                self._deliver(answer, pending, emit, starting=starting)
                if not pending:
                    break
        except (httpx.TransportError, EventTooLarge) as exc:
            logger.info("the event stream from %s broke: %s", self.url, exc)
        return last_id

    def _adopt_session(self, response: httpx.Response) -> None:
        session = response.headers.get("mcp-session-id")
        if session is not None and not (session.isascii() and session.isprintable() and session):
            raise RelayError(f"{self.url} sent a malformed Mcp-Session-Id")
        self.session_id = session

    def _get_headers(self, last_event_id: str | None) -> dict[str, str]:
        headers = {**self.headers, "accept": "text/event-stream"}
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        if last_event_id is not None and last_event_id.isprintable():
            headers["last-event-id"] = last_event_id
        return headers

    # -- a new session after a 404 ---------------------------------------------------------

    async def renew(self, expired: str) -> None:
        """Start a new session in place of ``expired`` (unless another task already did)."""
        async with self._renew_lock:
            if self.session_id != expired:
                return
            if self.initialize is None:
                raise SessionLost(f"{self.url} ended the MCP session (HTTP 404)")
            logger.warning("%s ended the MCP session; starting a new one", self.url)
            self._renewals += 1
            replay = {**self.initialize, "id": f"mcp-client-auth-renew-{self._renewals}"}
            answers: list[jsonrpc.Message] = []
            await self._post(replay, Pending(replay), answers.append, starting=True)
            if not any(isinstance(a, dict) and "result" in a for a in answers):
                self.session_id = None
                raise SessionLost(f"{self.url} ended the MCP session and refused a new one")
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await self._post(initialized, Pending(initialized), self.emit, starting=False)
            self.start_listening(restart=True)

    # -- the server's own stream -----------------------------------------------------------

    def start_listening(self, *, restart: bool = False) -> None:
        if self.protocol_version in STATELESS_VERSIONS or self._closed:
            return
        if self._listener is not None and not self._listener.done():
            if not restart:
                return
            self._listener.cancel()
        self._listener = asyncio.get_running_loop().create_task(self._listen(self.session_id))

    async def _listen(self, session: str | None) -> None:
        """Hold the GET stream open for as long as this session lives."""
        last_id: str | None = None
        delay = 1.0
        while not self._closed and self.session_id == session:
            try:
                async with self.client.stream(
                    "GET", self.url, headers=self._get_headers(last_id)
                ) as response:
                    status = response.status_code
                    if status == 405:
                        logger.info("%s offers no stream of its own (HTTP 405)", self.url)
                        return
                    if status == 404 and session is not None:
                        if not self._closed:
                            await self._renew_quietly(session)
                        return
                    kind = response.headers.get("content-type", "").split(";")[0].strip()
                    if status == 200 and kind == "text/event-stream":
                        delay = 1.0
                        async for event in events(lines_of(response.aiter_text())):
                            last_id = event.id or last_id
                            if event.retry is not None:
                                delay = max(event.retry / 1000, 0.1)
                            if event.data and event.event == "message":
                                self._relay_own(event.data)
                    else:
                        logger.info("%s refused its stream (HTTP %s)", self.url, status)
            except (httpx.TransportError, EventTooLarge) as exc:
                logger.info("the server's stream from %s broke: %s", self.url, exc)
            except RelayError as exc:
                logger.warning("%s", exc)
            except Exception as exc:  # an auth failure: try again later, never crash
                logger.warning("the server's stream from %s failed: %s", self.url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_BACKOFF_CAP)

    async def _renew_quietly(self, session: str) -> None:
        try:
            await self.renew(session)
        except Exception as exc:
            logger.warning("could not start a new session with %s: %s", self.url, exc)

    def _relay_own(self, data: str) -> None:
        try:
            self.emit(jsonrpc.decode(data))
        except jsonrpc.NotJsonRpc as exc:
            _dropped(self.url, exc)

    # -- the end ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening and end the session (DELETE), as the spec asks of a client."""
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        if self.session_id is not None:
            headers = {**self.headers, "mcp-session-id": self.session_id}
            if self.protocol_version is not None:
                headers["mcp-protocol-version"] = self.protocol_version
            with contextlib.suppress(Exception):
                await self.client.request("DELETE", self.url, headers=headers, timeout=5.0)


def _dropped(url: str, exc: Exception) -> None:
    logger.warning("dropped an event from %s that is not JSON-RPC: %s", url, exc)


class _SessionExpired(Exception):
    """A 404 to a request that carried the session id."""


async def _read_capped(response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                break
            raise RelayError(f"{response.url} answered with a body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
