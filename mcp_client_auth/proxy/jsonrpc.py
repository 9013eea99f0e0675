"""JSON-RPC 2.0 framing for the relay: what a line from the host is, and the errors the proxy
itself answers with.

The proxy relays messages as they are and looks inside only as far as routing needs (is it a
request, what is its id and method), so a protocol revision that adds fields or methods passes
through untouched, byte for byte where it came as one line of UTF-8 (nothing is parsed and
written out again only to be forwarded). Anything else is written as compact JSON on one line:
a server's pretty-printed JSON or a multi-line SSE ``data`` field must not split a message
across lines of stdout.
"""

from __future__ import annotations

import json
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
SERVER_UNREACHABLE = -32000  # implementation-defined server errors: -32000 to -32099
AUTH_FAILED = -32001
SESSION_LOST = -32002
TRANSPORT_ERROR = -32003

Message = Any  # a decoded JSON-RPC message (an object) or a batch (a list of them)

_MAX_DEPTH = 256


class NotJsonRpc(ValueError):
    """A line or body that is not a JSON-RPC message: the code and text to answer with."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Verbatim(dict[str, Any]):
    """A message object that remembers the line it was parsed from, so that relaying it
    unchanged costs no serialising: :func:`encode` gives the line back. Never mutated after
    :func:`decode` makes it (a changed message is built as a new dict)."""

    line: bytes


def decode(data: str | bytes) -> Message:
    """Parse one message or batch; :class:`NotJsonRpc` for anything else. A message object
    that sits on one line of UTF-8 comes back :class:`Verbatim`."""
    try:
        message = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise NotJsonRpc(PARSE_ERROR, f"Parse error: {exc}") from None
    if isinstance(message, list):
        if not message or not all(isinstance(m, dict) for m in message):
            raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: a batch must list message objects")
        return message
    if not isinstance(message, dict):
        raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: not a JSON-RPC message object")
    try:
        line = (data.encode() if isinstance(data, str) else data).strip()
    except UnicodeEncodeError:  # a lone surrogate: written out afresh, as JSON escapes
        return message
    if _one_utf8_line(line):
        verbatim = Verbatim(message)
        verbatim.line = line
        return verbatim
    return message


def _one_utf8_line(data: bytes) -> bool:
    """Whether JSON that parsed is already one line of UTF-8 JSON text. ``json.loads`` also
    reads UTF-16 and UTF-32 (each has NUL bytes in its first characters, which UTF-8 JSON
    never has: control characters inside strings must be escaped) and JSON spread over lines;
    those are written out afresh."""
    return (
        data[:1] == b"{"
        and data[-1:] == b"}"
        and b"\n" not in data
        and b"\r" not in data
        and b"\x00" not in data
    )


def encode(message: Message) -> bytes:
    """One line of compact JSON (no newline inside; the caller ends the line)."""
    if type(message) is Verbatim:
        return message.line
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only JSON's escapes can carry it
        return json.dumps(message, separators=(",", ":")).encode()


def is_request(message: Message) -> bool:
    return isinstance(message, dict) and "method" in message and "id" in message


def is_notification(message: Message) -> bool:
    return isinstance(message, dict) and "method" in message and "id" not in message


def is_response(message: Message) -> bool:
    return isinstance(message, dict) and "method" not in message and "id" in message


def request_ids(message: Message) -> list[Any]:
    """The ids of the requests in a message or batch: each expects an answer."""
    batch = message if isinstance(message, list) else [message]
    return [m["id"] for m in batch if is_request(m)]


def response_ids(message: Message) -> list[Any]:
    """The ids answered by a message or batch from the server."""
    batch = message if isinstance(message, list) else [message]
    return [m.get("id") for m in batch if is_response(m)]


def method_of(message: Message) -> str | None:
    method = message.get("method") if isinstance(message, dict) else None
    return method if isinstance(method, str) else None


def error(request_id: Any, code: int, text: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response from the proxy itself."""
    body: dict[str, Any] = {"code": code, "message": text}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}
