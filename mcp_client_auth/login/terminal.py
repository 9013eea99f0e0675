"""Terminal manners shared by the login strategies.

A login talks to a person through a terminal (or a log, when there is none): a status line
that counts down on a TTY and plain, rate-limited lines elsewhere; text from a server printed
only after control characters are removed (a hostile server must not be able to drive the
terminal with escape sequences); and a line read from the user that can be cancelled, so Ctrl+C
or a timeout ends a wait at once instead of when the user next presses Enter; and a browser
opened only when it is a graphical one, never a console browser that would take over the
terminal the login is printing to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from typing import TextIO, TypeVar

from ..server_text import clean_text

__all__ = [
    "StatusLine",
    "clean",
    "default_input",
    "default_output",
    "describe_duration",
    "format_remaining",
    "is_terminal",
    "open_system_browser",
    "read_line",
    "run_in_daemon_thread",
    "system_browser_available",
]

T = TypeVar("T")


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an interactive terminal (False for anything that cannot say)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (OSError, ValueError):
        return False


def clean(text: str, limit: int = 300) -> str:
    """``text`` from a server, safe to print: the library's one rule
    (:func:`~mcp_client_auth.untrusted.clean_text`), control, bidi and invisible characters
    shown as escapes, bounded length."""
    return clean_text(text, limit)


def format_remaining(seconds: float) -> str:
    """``4:59`` or ``1:02:03``: the time left, as a countdown reads."""
    total = max(0, int(seconds + 0.999))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe_duration(seconds: float) -> str:
    """``5 min``, ``1 min 30 s``, ``0.5 s``: a duration in a sentence."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min" + (f" {secs} s" if secs else "")


def _console_browser(controller: webbrowser.BaseBrowser) -> bool:
    """A browser that would take over the terminal (lynx, w3m, www-browser) and block."""
    return type(controller) is webbrowser.GenericBrowser or type(controller).__name__ == "Elinks"


def system_browser_available() -> bool:
    """Whether ``webbrowser`` can open a graphical browser here.

    On Linux and the BSDs without ``DISPLAY`` or ``WAYLAND_DISPLAY`` (SSH sessions,
    containers, CI) the only candidates are console browsers, which would take over the very
    terminal the login is printing to; those do not count. A ``BROWSER`` variable is the
    user's explicit choice and always counts.
    """
    if os.environ.get("BROWSER"):
        return True
    if sys.platform not in ("darwin", "win32") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return False
    return not _console_browser(controller)


def open_system_browser(url: str) -> bool:
    """``webbrowser.open``, but never a console browser (see ``system_browser_available``)."""
    if not system_browser_available():
        return False
    return webbrowser.open(url)


class StatusLine:
    """One line of progress: redrawn in place on a terminal, plain lines in a log.

    On a TTY, ``show`` rewrites the same line (so a countdown does not scroll the screen);
    ``note`` prints a lasting line above it. Elsewhere (a log file, CI), ``show`` prints a plain
    line at most every ``plain_every`` seconds, so a five-minute wait adds a handful of lines,
    not three hundred.
    """

    def __init__(
        self,
        output: TextIO,
        *,
        live: bool | None = None,
        plain_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._output = output
        self.live = is_terminal(output) if live is None else live
        self._plain_every = plain_every
        self._clock = clock
        self._last_plain: float | None = None
        self._shown = ""

    def show(self, text: str, *, force: bool = False) -> None:
        if self.live:
            self._write("\r\x1b[2K" + text)
            self._shown = text
            return
        now = self._clock()
        if force or self._last_plain is None or now - self._last_plain >= self._plain_every:
            self._last_plain = now
            self._write(text + "\n")

    def note(self, text: str) -> None:
        shown = self._shown
        self.clear()
        self._write(text + "\n")
        if shown:
            self.show(shown)

    def clear(self) -> None:
        if self.live and self._shown:
            self._write("\r\x1b[2K")
        self._shown = ""

    def _write(self, text: str) -> None:
        try:
            self._output.write(text)
            self._output.flush()
        except (OSError, ValueError):
            pass  # a closed or broken output must not end a login


def run_in_daemon_thread(func: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``func`` in a daemon thread; its result as a future of the running loop.

    Not ``asyncio.to_thread``: that uses the default executor, which ``asyncio.run`` joins at
    exit, so a blocked ``input()`` or a browser launcher that never returns would hang the
    program after the login was cancelled. A daemon thread is simply abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            future.set_exception(value)

    def target() -> None:
        try:
            result: object = func()
            ok = True
        except BaseException as exc:  # handed to the awaiting task
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=target, name="mcp-client-auth-login", daemon=True).start()
    return future


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


async def read_line(stream: TextIO) -> str | None:
    """Read one line from ``stream``; ``None`` at end of input. Cancelling stops the read.

    On a POSIX terminal the reading thread waits with ``select`` and a stop flag, so after a
    cancel it exits and does not swallow the next line the user types into the program.
    Elsewhere (pipes, StringIO, Windows) it reads in an abandoned daemon thread.
    """
    stop = threading.Event()
    fd = _fileno(stream)
    selectable = os.name == "posix" and fd is not None and is_terminal(stream)

    def read() -> str | None:
        if selectable:
            import select

            while not stop.is_set():
                ready, _, _ = select.select([stream], [], [], 0.2)
                if ready:
                    break
            else:
                return None
        line = stream.readline()
        return line if line else None

    future = run_in_daemon_thread(read)
    try:
        return await future
    finally:
        stop.set()


def default_output(output: TextIO | None) -> TextIO:
    """``output``, or the current ``sys.stderr`` (looked up late, so redirection applies)."""
    return output if output is not None else sys.stderr


def default_input(input: TextIO | None) -> TextIO:
    """``input``, or the current ``sys.stdin``."""
    return input if input is not None else sys.stdin
