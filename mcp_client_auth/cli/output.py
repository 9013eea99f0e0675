"""How the tool speaks: stdout for what was asked for, stderr for a person, and exit codes.

stdout carries only what a command is for (the token, the status, the doctor's report), so
``$(mcp-client-auth token URL)`` is exactly the token, whatever else happens; progress,
confirmations, warnings and errors go to stderr. Colour and the live status line appear only
on a terminal, never in a pipe or a log, and never with ``NO_COLOR`` set.

Every command writes through a :class:`Streams` it is handed, never through ``sys`` directly,
so a test can run it in-process and read what it said.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

PROG = "mcp-client-auth"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl+C (128 + SIGINT)


class CommandError(Exception):
    """A failure the user can act on: printed as one line on stderr, then exit 1."""


class UsageError(Exception):
    """The command line itself is wrong: printed with the usage hint, then exit 2."""


class UsageExit(SystemExit):
    """The parser has said all there is to say (a usage error, or ``--help``): exit with
    ``code``. A ``SystemExit``, so that a parser used on its own still ends the process."""


class Streams:
    """Where a command reads and writes, and the environment its manners depend on.

    ``env`` decides the CLI's own choices (colour, where the doctor expects the key to come
    from); the library underneath reads the process environment itself. A plain class: a
    dataclass would be built at import, on every run of ``token``.
    """

    __slots__ = ("env", "stderr", "stdin", "stdout")

    def __init__(
        self, stdout: TextIO, stderr: TextIO, stdin: TextIO, env: Mapping[str, str]
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.env = env

    @classmethod
    def system(cls) -> Streams:
        """The process's own streams, as they are at the time of the call."""
        return cls(sys.stdout, sys.stderr, sys.stdin, os.environ)


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


class Style:
    """Colour for one stream: only on a terminal, and never with ``NO_COLOR`` or TERM=dumb."""

    def __init__(self, stream: TextIO, env: Mapping[str, str]) -> None:
        self.enabled = is_tty(stream) and not env.get("NO_COLOR") and env.get("TERM", "") != "dumb"

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._paint("1", text)

    def good(self, text: str) -> str:
        return self._paint("32", text)

    def warn(self, text: str) -> str:
        return self._paint("33", text)

    def bad(self, text: str) -> str:
        return self._paint("31", text)

    def dim(self, text: str) -> str:
        return self._paint("2", text)


class Progress:
    """A live status line on stderr while something slow runs; nothing at all off a terminal.

    Off a terminal the line would only be noise in a log (the result is reported anyway).
    """

    def __init__(self, streams: Streams) -> None:
        self.stream = streams.stderr
        self.live = is_tty(self.stream)
        self._shown = False

    def show(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r\x1b[2K{text}…")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


class Reporter:
    """Messages for a person, on stderr, with the symbols ``gh`` users know."""

    def __init__(self, streams: Streams) -> None:
        self.stream = streams.stderr
        self.style = Style(streams.stderr, streams.env)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def success(self, text: str) -> None:
        self._write(f"{self.style.good('✓')} {printable(text)}")

    def warning(self, text: str) -> None:
        self._write(f"{self.style.warn('!')} {printable(text)}")

    def info(self, text: str) -> None:
        self._write(text)  # our own lines, some styled: what they quote is cleaned by the caller

    def error(self, text: str) -> None:
        self._write(f"{self.style.bad('error:')} {printable(text)}")


def write_data(streams: Streams, text: str) -> None:
    """Write ``text`` and a newline to stdout: the output the user asked for, and nothing else."""
    streams.stdout.write(text + "\n")
    streams.stdout.flush()


def usage_error(streams: Streams, prog: str, message: str) -> UsageExit:
    """Say what is wrong with the command line in one line; the caller raises the result.

    argparse prints the whole usage block before its one-line error, and a user then hunts for
    the error under it: this line names ``--help`` instead, where the usage is.
    """
    Reporter(streams).error(f"{message} (see `{prog} --help`)")
    return UsageExit(EXIT_USAGE)


def printable(text: str) -> str:
    """``text`` with its line breaks kept and every other control, bidi or invisible character
    shown as an escape (the library's one rule): what a message quotes from a server cannot
    drive the terminal, whoever built the message."""
    from .. import visible_text

    return "\n".join(visible_text(line) for line in text.split("\n"))


def one_line(text: str) -> str:
    """A value a server chose (a client_id, scopes), shown on one line with escapes."""
    from .. import visible_text

    return visible_text(text)
