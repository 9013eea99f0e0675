"""Running the tool in this process, through ``main(argv, streams=...)``, as the subprocess tests
run the console script.

Why besides the subprocess tests: a command that writes only to the streams it is handed can be
run and read without a process, so each command's every outcome (its lines on stdout and
stderr, its exit code) can be checked quickly, with a debugger, and with streams no process
has (a terminal that is not one, a reader that goes away). The components stay real: the
store is a real one in this test's folder, the servers are the demo servers or the real
authorization server, and a login is played by a "person" who opens the printed URL and pastes
back where the browser ended.
"""

from __future__ import annotations

import asyncio
import io
import os
import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mcp_client_auth import ServerRecord, TokenStore
from mcp_client_auth.cli import main
from mcp_client_auth.cli.output import Streams

from .conftest import AUTHORIZE, CLI, TIMEOUT, one_redirect

URL = "https://mcp.example.com/mcp"  # a server nobody asks: for commands that read the store


@dataclass
class Ran:
    """One finished in-process run of the tool."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error(self) -> str:
        """The one line on stderr a failing command must end with: checked, then returned."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        return lines[0]


class Terminal(io.StringIO):
    """A stream that says it is a terminal: what colour and live lines are written to."""

    def isatty(self) -> bool:
        return True


class Person:
    """The person at the terminal during ``login --paste``: opens the authorization URL the
    login prints (with ``browser``) and pastes back what that returns. ``before`` is typed
    first (a client secret)."""

    def __init__(self, browser: Callable[[str], str | None], before: str | None = None) -> None:
        self.browser = browser
        self.typed: queue.Queue[str] = queue.Queue()
        self.failures: list[BaseException] = []
        if before is not None:
            self.typed.put(before + "\n")
        self.stderr = _Watched(self.read)
        self.stdin = _Typed(self.typed)

    def read(self, line: str) -> None:
        found = AUTHORIZE.search(line)
        if found is None:
            return
        try:
            pasted = self.browser(found.group(1))
        except BaseException as exc:  # the test fails with it, after the login ends
            self.failures.append(exc)
            pasted = None
        self.typed.put("" if pasted is None else pasted + "\n")


class _Watched(io.StringIO):
    """stderr as a person reads it: every finished line is handed to ``read``."""

    def __init__(self, read: Callable[[str], None]) -> None:
        super().__init__()
        self._read = read
        self._partial = ""

    def write(self, text: str) -> int:
        written = super().write(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._read(line)
        return written


class _Typed(io.StringIO):
    """stdin fed by the person: ``readline`` waits for the next line typed ("" ends it)."""

    def __init__(self, typed: queue.Queue[str]) -> None:
        super().__init__()
        self._typed = typed

    def readline(self, size: int | None = -1) -> str:
        try:
            return self._typed.get(timeout=TIMEOUT)
        except queue.Empty:
            return ""


@dataclass
class InProcess:
    """Runs ``main`` with this test's store (the ``cli`` fixture's folders and environment)."""

    cli: CLI

    def __call__(
        self,
        *argv: str,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
        stdout: io.StringIO | None = None,
        stderr: io.StringIO | None = None,
    ) -> Ran:
        out, err = stdout or io.StringIO(), stderr or io.StringIO()
        streams = Streams(out, err, io.StringIO(stdin), {**os.environ, **(env or {})})
        return self._run(argv, streams)

    def login(
        self,
        url: str,
        *options: str,
        browser: Callable[[str], str | None] = one_redirect,
        secret: str | None = None,
    ) -> Ran:
        """``login URL --paste OPTIONS``, with a person answering (see :class:`Person`)."""
        person = Person(browser, before=secret)
        streams = Streams(io.StringIO(), person.stderr, person.stdin, os.environ)
        ran = self._run(("login", url, "--paste", *options), streams)
        if person.failures:
            raise person.failures[0]
        return ran

    def _run(self, argv: tuple[str, ...], streams: Streams) -> Ran:
        code = main(list(argv), streams=streams)
        out, err = streams.stdout, streams.stderr
        assert isinstance(out, io.StringIO) and isinstance(err, io.StringIO)
        ran = Ran(code, out.getvalue(), err.getvalue())
        if not isinstance(err, Terminal):
            assert "\x1b[" not in ran.output, (
                f"colour or cursor codes off a terminal: {ran.output!r}"
            )
        assert "Traceback" not in ran.output or "--debug" in argv, ran.output
        return ran

    def record(self, url: str) -> ServerRecord | None:
        return self.cli.record(url)

    def put(self, record: ServerRecord) -> None:
        """Store ``record`` as a login would have (same folder, same key)."""

        async def put() -> None:
            store = TokenStore.default(self.cli.home)
            await store.put(record)
            await store.aclose()

        asyncio.run(put())
