"""The host's side: JSON-RPC messages as lines on stdin and stdout.

stdout belongs to the protocol: only :class:`HostOutput` writes to it, one whole line per
message under a lock, so concurrent relays cannot interleave their bytes. Everything meant for
a person goes to stderr or the debug log.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO

from . import jsonrpc

MAX_LINE = 64 * 1024 * 1024  # a host line longer than this is answered with a parse error


class HostOutput:
    """Writes messages to the host, one line each; never raises once the host has gone."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._lock = threading.Lock()
        self.closed = False

    def send(self, message: jsonrpc.Message) -> None:
        self.send_line(jsonrpc.encode(message))

    def send_line(self, line: bytes) -> None:
        if self.closed:
            return
        with self._lock:
            try:
                self._stream.write(line)  # no copy of a large line to add its ending
                self._stream.write(b"\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.closed = True  # the host went away; the input side sees EOF and ends


async def host_lines(stream: BinaryIO | None = None) -> AsyncIterator[bytes | None]:
    """The host's lines without their endings, as they arrive; ``None`` for a line over
    :data:`MAX_LINE` (its bytes are skipped up to the next newline). Ends at EOF.

    A pipe (what hosts give) is read by the event loop itself: no thread hop per message.
    Anything else (a file, a terminal) is read by a daemon thread."""
    source = stream if stream is not None else sys.stdin.buffer
    if _is_pipe(source):
        async for line in _pipe_lines(source):
            yield line
    else:
        async for line in _thread_lines(source):
            yield line


def _is_pipe(source: BinaryIO) -> bool:
    try:
        mode = os.fstat(source.fileno()).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _pipe_lines(source: BinaryIO) -> AsyncIterator[bytes | None]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
    skipping = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as end:  # EOF: a last line without its newline
            if end.partial and not skipping:
                yield end.partial.rstrip(b"\r")
            return
        except asyncio.LimitOverrunError as over:  # too long: drop it up to its newline
            await reader.readexactly(over.consumed)
            skipping = True
            continue
        if skipping:
            skipping = False
            yield None
            continue
        yield line.rstrip(b"\r\n")


async def _thread_lines(source: BinaryIO) -> AsyncIterator[bytes | None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | EOFError | None] = asyncio.Queue()

    def read() -> None:
        try:
            while True:
                line = source.readline(MAX_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    _skip_rest(source)
                    loop.call_soon_threadsafe(queue.put_nowait, None)
                    continue
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip(b"\r\n"))
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop closed first
            loop.call_soon_threadsafe(queue.put_nowait, EOFError())

    threading.Thread(target=read, name="mcp-client-auth-stdin", daemon=True).start()
    while True:
        item = await queue.get()
        if isinstance(item, EOFError):
            return
        yield item


def _skip_rest(source: BinaryIO) -> None:
    while True:
        chunk = source.readline(MAX_LINE)
        if not chunk or chunk.endswith(b"\n"):
            return


def protect_stdout() -> BinaryIO:
    """Take stdout for the protocol and point file descriptor 1 at stderr, so a stray print
    or a library writing to stdout cannot corrupt the message stream; returns the protocol's
    stream."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol
