"""The library's log records while a command runs: one line each on stderr, all under --debug."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .output import Streams, Style

LIBRARY = "mcp_client_auth"
HTTP_LOGGERS = ("httpx", "httpcore")


@contextmanager
def library_logging(streams: Streams, *, debug: bool) -> Iterator[None]:
    """Send the library's records to ``streams.stderr`` while the block runs, then put the
    loggers back as they were (a command run in-process leaves no handler behind).

    The store's once-per-process "the key is in a key file" warning is dropped: ``token`` runs
    in prompts and loops, where it would repeat on every call, and ``login``, ``status`` and
    ``doctor`` each say where the key is in their own report. Every other warning (an
    unreadable entry set aside, say) still shows.
    """
    handler = logging.StreamHandler(streams.stderr)
    handler.setFormatter(_OneLine(Style(streams.stderr, streams.env), debug=debug))
    if not debug:
        handler.addFilter(_not_the_key_file_warning)
    library = logging.getLogger(LIBRARY)
    saved = (list(library.handlers), library.level, library.propagate)
    library.handlers[:] = [handler]
    library.setLevel(logging.DEBUG if debug else logging.WARNING)
    library.propagate = False
    http = [logging.getLogger(name) for name in HTTP_LOGGERS] if debug else []
    http_levels = {logger: logger.level for logger in http}
    for logger in http:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in http_levels.items():
            logger.removeHandler(handler)
            logger.setLevel(level)
        library.handlers[:], library.level, library.propagate = saved


def _not_the_key_file_warning(record: logging.LogRecord) -> bool:
    return record.funcName != "_warn_key_file"


class _OneLine(logging.Formatter):
    """One line per record, whatever a server put in its message; stamped under --debug."""

    def __init__(self, style: Style, *, debug: bool) -> None:
        super().__init__()
        self.style = style
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        from .. import visible_text

        message = visible_text(record.getMessage())
        if self.debug:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            head = f"{stamp} {record.levelname.lower()} {record.name}: {message}"
            if record.exc_info:
                head += "\n" + self.formatException(record.exc_info)
            return head
        label = record.levelname.lower()
        painted = (
            self.style.bad(label) if record.levelno >= logging.ERROR else self.style.warn(label)
        )
        return f"{painted}: {message}"
