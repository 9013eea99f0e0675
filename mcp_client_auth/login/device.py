"""Device login (RFC 8628): the user signs in on another device with a short code.

The flow performs the HTTP requests (the device authorization request, then polling the token
endpoint) and treats ``DeviceLogin`` specially: it never calls ``start``. What lives here is
the part a person sees: the page to visit and the code to enter, shown plainly
(:meth:`DeviceLogin.show_device_code`), and the wait between polls, with a countdown on a
terminal (:meth:`DeviceLogin.sleep`).

Everything shown comes from the authorization server, so it is stripped of control characters
before it reaches the terminal, and only an ``https`` (or loopback ``http``) page is ever opened
in a browser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from ..errors import AuthorizationError
from ..server_text import visible_url
from .base import Login, LoginSession
from .terminal import (
    StatusLine,
    clean,
    default_output,
    describe_duration,
    format_remaining,
    open_system_browser,
)

if TYPE_CHECKING:
    from ..effects import ShowDeviceCode

__all__ = ["DeviceLogin"]


def _openable(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme == "http":
        return parts.hostname in ("127.0.0.1", "localhost", "::1")
    return False


class DeviceLogin(Login):
    """Show the verification page and user code; wait between the flow's polls.

    ``open_browser=True`` also opens the verification page in this machine's browser (useful
    on a desktop; the default is off, since this login is chosen for machines without one).
    ``opener`` replaces ``webbrowser.open`` (used only for a graphical browser, never one
    that would take over the terminal); ``clock`` is for tests.
    """

    def __init__(
        self,
        *,
        output: TextIO | None = None,
        open_browser: bool = False,
        opener: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._output = output
        self.open_browser = open_browser
        self._opener = opener
        self._clock = clock
        self._expires_at: float | None = None
        self._status: StatusLine | None = None
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests replace it

    async def start(self, *, redirect_uri: str | None, redirect_port: int | None) -> LoginSession:
        """Never used by a flow that supports the device grant; reaching it means no support."""
        raise AuthorizationError(
            "this server does not offer the device flow (its metadata has no "
            "device_authorization_endpoint); sign in with BrowserLogin or PasteLogin instead"
        )

    def show(
        self,
        verification_uri: str,
        user_code: str,
        verification_uri_complete: str | None = None,
        expires_in: float | None = None,
    ) -> None:
        """Tell the user where to go and what to enter (RFC 8628 3.3)."""
        uri = visible_url(verification_uri)
        code = clean(user_code, 64)
        complete = visible_url(verification_uri_complete) if verification_uri_complete else None
        lines = ["", "To sign in, use a browser on any device (your phone works too)."]
        if complete:
            lines += [
                "Open this page, and check that it shows the code below:",
                "",
                f"    {complete}",
                "",
                f"    Code: {code}",
                "",
                f"(Or open {uri} and enter the code yourself.)",
            ]
        else:
            lines += [
                "Open this page:",
                "",
                f"    {uri}",
                "",
                "and enter this code:",
                "",
                f"    {code}",
                "",
            ]
        if expires_in is not None and expires_in > 0:
            lines.append(f"The code is valid for {describe_duration(expires_in)}.")
            self._expires_at = self._clock() + expires_in
        else:
            self._expires_at = None
        self._write("\n".join(lines) + "\n")
        if self.open_browser:
            target = verification_uri_complete or verification_uri
            opened = False
            if _openable(target):
                opener = self._opener or open_system_browser
                try:
                    opened = bool(opener(target))
                except Exception:
                    opened = False
            self._write(
                "Opened the page in your browser.\n"
                if opened
                else "Could not open a browser here; open the page above yourself.\n"
            )

    async def show_device_code(self, code: ShowDeviceCode) -> None:
        self.show(
            code.verification_uri, code.user_code, code.verification_uri_complete, code.expires_in
        )

    async def sleep(self, seconds: float) -> None:
        await self.wait(seconds)

    async def wait(self, interval: float) -> None:
        """Sleep ``interval`` seconds between polls, showing that the login is waiting.

        The live line is cleared before returning, so whatever the flow prints next starts on
        a clean line.
        """
        output = default_output(self._output)
        if self._status is None:
            self._status = StatusLine(output, clock=self._clock)
        status = self._status
        end = self._clock() + max(0.0, interval)
        slept = 0.0  # also bounds the wait where the clock does not move (a test's fixed clock)
        try:
            while True:
                text = "Waiting for you to approve the sign-in in the browser"
                if self._expires_at is not None:
                    left = format_remaining(self._expires_at - self._clock())
                    text += f" ({left} left)" if status.live else f" (code valid {left} more)"
                status.show(text + ("... (Ctrl+C to cancel)" if status.live else "."))
                remaining = min(end - self._clock(), interval - slept)
                if remaining <= 0:
                    break
                step = min(1.0, remaining) if status.live else remaining
                await self._sleep(step)
                slept += step
        finally:
            status.clear()

    def _write(self, text: str) -> None:
        output = default_output(self._output)
        try:
            output.write(text)
            output.flush()
        except (OSError, ValueError):
            pass

    def __repr__(self) -> str:
        return f"DeviceLogin(open_browser={self.open_browser!r})"
