"""Server-sent events (the WHATWG ``text/event-stream`` format), parsed line by line.

Fed the lines of a response body as they arrive, so each event is handed on the moment its
blank line is read: a long-running tool's progress notifications reach the host as the server
sends them, not when the stream ends.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

MAX_EVENT_CHARS = 16 * 1024 * 1024  # one event larger than this is a broken or hostile stream
_LINE_END = re.compile(r"\r\n|\r|\n")  # the event-stream format's three line endings


class EventTooLarge(ValueError):
    """An event's data grew past :data:`MAX_EVENT_CHARS` before it ended."""


@dataclass(frozen=True)
class Event:
    event: str
    data: str  # empty for an event that only carried an id (a resumption point)
    id: str | None  # the stream's last event id once this event is dispatched
    retry: int | None  # milliseconds, when this event block set it


async def lines_of(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """The lines of a text stream, without their endings, none longer than
    :data:`MAX_EVENT_CHARS`: a line is held whole until it ends, so one that never ends
    (a broken or hostile stream) would otherwise take memory without bound."""
    parts: list[str] = []
    size = 0
    after_cr = False  # the last chunk ended in "\r": a "\n" opening this one ends no line
    async for chunk in chunks:
        if not chunk:
            continue
        if after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith("\r")
        *ended, rest = _LINE_END.split(chunk)
        for piece in ended:
            parts.append(piece)
            yield "".join(parts)
            parts, size = [], 0
        if rest:
            size += len(rest)
            if size > MAX_EVENT_CHARS:
                raise EventTooLarge(f"a line of over {MAX_EVENT_CHARS} characters")
            parts.append(rest)
    if parts:
        yield "".join(parts)


async def events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """The events in ``lines`` (without their line endings), in order."""
    data: list[str] = []
    size = 0
    kind = ""
    last_id: str | None = None
    retry: int | None = None
    new_id = False
    async for line in lines:
        if not line:
            if data or new_id:  # an id-only event moves the resumption point: pass it on
                yield Event(kind or "message", "\n".join(data), last_id, retry)
            data, size, kind, retry, new_id = [], 0, "", None, False
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            size += len(value) + 1
            if size > MAX_EVENT_CHARS:
                raise EventTooLarge(f"an event of over {MAX_EVENT_CHARS} characters")
            data.append(value)
        elif field == "event":
            kind = value
        elif field == "id":
            if "\0" not in value:
                last_id, new_id = value, True
        elif field == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    if data:  # the stream ended without the final blank line: the spec drops the event
        return
