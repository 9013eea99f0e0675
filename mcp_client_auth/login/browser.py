"""Browser login: the system browser, and the user's way back to the client (RFC 8252).

``start`` binds the loopback listener (:mod:`.loopback`) before anything else, so the redirect
URI is fixed before the client is registered. ``complete`` serves it on whichever asyncio loop
runs it (:mod:`.listener`), prints the authorization URL, opens the browser, and waits for the
listener's answer; where no browser can be opened it offers to paste the address the browser
lands on, keeps listening for a browser elsewhere (a port the user fixed, as over SSH), or
hands the login to the device flow where the server offers it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthorizationError, ConfigurationError
from ..server_text import visible_url
from .base import Login, LoginSession, UseDeviceFlow
from .device import DeviceLogin
from .listener import CallbackListener, CallbackOutcome, open_listener
from .loopback import PortInUseError
from .paste import read_pasted
from .terminal import (
    StatusLine,
    default_input,
    default_output,
    describe_duration,
    format_remaining,
    is_terminal,
    open_system_browser,
    run_in_daemon_thread,
    system_browser_available,
)

if TYPE_CHECKING:
    from ..effects import ShowDeviceCode

__all__ = [
    "BrowserLogin",
    "BrowserLoginSession",
    "NoBrowserError",
    "Opener",
    "PortInUseError",
]

Opener = Callable[[str], bool]
"""Opens a URL in a browser; returns whether it could (``webbrowser.open`` fits)."""

DEVICE_FALLBACK_NOTE = "No browser can be opened here; using the device flow instead."


class NoBrowserError(AuthorizationError):
    """No browser could be opened and no terminal is attached to paste the answer into.

    Raised only where the authorization server does not offer the device authorization
    grant: where it does, the session hands the login to the flow's device grant instead
    (:class:`~mcp_client_auth.login.base.UseDeviceFlow`).
    """


class BrowserLoginSession(LoginSession):
    """A bound loopback listener (or, for a non-loopback redirect URI, paste-back only)."""

    # the flow offered the device grant: with no way to reach the user, hand the login to it
    device_flow_offered: bool = False

    def __init__(
        self, login: BrowserLogin, redirect_uri: str, listener: CallbackListener | None
    ) -> None:
        self.redirect_uri = redirect_uri
        self._login = login
        self._listener = listener
        self._check: Callable[[str], object] | None = None
        self._used = False
        self._status: StatusLine | None = None

    @property
    def port(self) -> int | None:
        """The listening port; None when nothing listens (a non-loopback redirect URI)."""
        return self._listener.port if self._listener is not None else None

    @property
    def listener(self) -> CallbackListener | None:
        """The loopback listener; None for a non-loopback redirect URI (paste-back only)."""
        return self._listener

    @property
    def listening(self) -> bool:
        """Whether the loopback listener serves, or still holds a connection it accepted."""
        return self._listener is not None and self._listener.active

    def check_callbacks_with(self, check: Callable[[str], object]) -> None:
        self._check = check

    def offer_device_flow(self) -> None:
        self.device_flow_offered = True

    async def complete(
        self, authorization_url: str, *, state: str, timeout: float
    ) -> str | UseDeviceFlow:
        if self._used:
            raise AuthorizationError("this login session was already used; start a new login")
        self._used = True
        login = self._login
        output = default_output(login._output)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        result: asyncio.Future[CallbackOutcome] = loop.create_future()
        paste_task: asyncio.Future[str] | None = None
        ticker: asyncio.Task[None] | None = None
        try:
            listener = self._listener
            if listener is not None:
                await listener.serve(result, state=state, check=self._check, note=self._note)
            listening = listener is not None and listener.serving
            printed = visible_url(authorization_url)
            _write(output, f"\nOpen this URL in your browser to sign in:\n\n    {printed}\n\n")
            opened: bool | None = None  # None: not tried (open_browser=False)
            # Finding the system browser may run a program (xdg-settings): not on the loop.
            if await run_in_daemon_thread(login.browser_available):
                _write(
                    output,
                    "Opening your browser... (if it does not open, copy the URL "
                    "above into a browser on this machine)\n",
                )
                opener = login._opener or open_system_browser
                verdict = await _first_or_none(
                    run_in_daemon_thread(lambda: _call_opener(opener, authorization_url)),
                    result,
                )
                opened = True if verdict is None else verdict  # None: answered already
            elif login.open_browser:
                opened = False
            can_paste = login._terminal_attached()
            # a port the user fixed is for a browser elsewhere (an SSH tunnel): keep listening
            fixed_port = listening and listener is not None and listener.fixed_by_user
            if opened is False and not result.done():
                _write(output, "Could not open a browser on this machine.\n")
                if fixed_port and not can_paste:
                    _write(
                        output,
                        f"Open the URL above in a browser that can reach {self.redirect_uri} "
                        f"(over SSH: ssh -L {self.port}:127.0.0.1:{self.port} ...).\n",
                    )
                elif not can_paste:
                    if self.device_flow_offered:
                        return UseDeviceFlow()
                    raise NoBrowserError(
                        "no browser could be opened here and no terminal is attached to paste "
                        "the answer into. Open the URL above in a browser on this machine, or "
                        "sign in with DeviceLogin or PasteLogin, or pass your own login callable."
                    )
            paste = can_paste and (not listening or opened is not True) and not result.done()
            if paste:
                shown = urlunsplit(urlsplit(self.redirect_uri)._replace(query="", fragment=""))
                if not listening:
                    _write(
                        output,
                        f"After you sign in, the browser is sent to {shown}. Copy "
                        "that whole address from the address bar and paste it here.\n",
                    )
                else:
                    _write(
                        output,
                        "If your browser is on another machine: after you sign in "
                        f"it is sent to {shown}, which will fail to load there; "
                        "copy that whole address and paste it here.\n",
                    )
                _write(output, f"(You have {describe_duration(timeout)}; Ctrl+C cancels.)\n")
                paste_task = asyncio.ensure_future(
                    read_pasted(
                        default_input(login._input),
                        output,
                        redirect_uri=self.redirect_uri,
                        state=state,
                        check=self._check,
                    )
                )
            # On a terminal the countdown redraws one line, which would garble a paste
            # prompt; with a prompt up, only plain lines.
            status = self._status = StatusLine(output, live=False if paste else None)
            if not paste:
                ticker = asyncio.ensure_future(self._tick(status, deadline))
            waiters: set[asyncio.Future[Any]] = set()
            if listening:
                waiters.add(result)
            if paste_task is not None:
                waiters.add(paste_task)
            if not waiters:  # stdin stopped being a terminal since start()
                if self.device_flow_offered:
                    return UseDeviceFlow()
                raise NoBrowserError(
                    f"the redirect URI {self.redirect_uri} cannot be received here and no "
                    "terminal is attached to paste the answer into"
                )
            done, _ = await asyncio.wait(
                waiters,
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            status.clear()
            if not done:
                raise AuthorizationError(
                    f"the sign-in did not finish within {describe_duration(timeout)}; "
                    "run the login again"
                )
            answer = done.pop().result()
            if isinstance(answer, CallbackOutcome):
                if answer.error is not None:
                    raise answer.error
                assert answer.url is not None
                _write(output, "Received the sign-in answer from your browser.\n")
                return answer.url
            assert isinstance(answer, str)
            return answer
        except (asyncio.CancelledError, KeyboardInterrupt):
            if self._status is not None:
                self._status.clear()
            _write(output, "\nSign-in cancelled.\n")
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
            if paste_task is not None:
                paste_task.cancel()
            if self._status is not None:
                self._status.clear()
            await self.aclose()

    async def _tick(self, status: StatusLine, deadline: float) -> None:
        """The countdown: a live line on a TTY; a plain line a minute in a log."""
        loop = asyncio.get_running_loop()
        while True:
            left = format_remaining(deadline - loop.time())
            if status.live:
                status.show(
                    f"Waiting for you to sign in in the browser... {left} left (Ctrl+C to cancel)"
                )
            else:
                status.show(f"Waiting for the sign-in in the browser ({left} left).")
            await asyncio.sleep(1.0 if status.live else 5.0)

    async def aclose(self) -> None:
        """Stop listening and drop every open connection. Safe to call twice."""
        if self._listener is not None:
            await self._listener.aclose()

    def _note(self, text: str) -> None:
        if self._status is not None:
            self._status.note(text)


def _write(output: TextIO, text: str) -> None:
    try:
        output.write(text)
        output.flush()
    except (OSError, ValueError):
        pass


def _call_opener(opener: Opener, url: str) -> bool:
    try:
        return bool(opener(url))
    except Exception:
        return False


async def _first_or_none(
    opener: asyncio.Future[bool], result: asyncio.Future[CallbackOutcome]
) -> bool | None:
    """The opener's verdict, or None if the login's answer arrives first."""
    both: set[asyncio.Future[Any]] = {opener, result}
    await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
    if opener.done():
        return opener.result()
    return None


class BrowserLogin(Login):
    """Sign in with the system browser; receive the answer on a loopback listener.

    ``port`` fixes the listener's port (or ``redirect_port`` given to ``start``; both set and
    different is a configuration error). Without either, a stored registration's loopback
    redirect URI is reused run after run, else a free port. A fixed port always wins: the
    provider does not pass a stored redirect URI on another port, and updates (RFC 7592) or
    redoes the client's registration for the new one.

    ``open_browser=False`` only prints the URL. ``opener`` replaces ``webbrowser.open`` (a
    callable taking the URL, returning whether a browser was opened): useful to drive a
    specific browser, or a headless one in tests. ``input`` is where a pasted answer is read
    from when no browser can be opened (default: stdin, used only when it is a terminal).
    """

    def __init__(
        self,
        port: int | None = None,
        open_browser: bool = True,
        *,
        output: TextIO | None = None,
        input: TextIO | None = None,
        opener: Opener | None = None,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"port must be between 1 and 65535, not {port}")
        self.port = port
        self.open_browser = open_browser
        self._output = output
        self._input = input
        self._opener = opener
        self._device_login: DeviceLogin | None = None

    def browser_available(self) -> bool:
        """Whether this login can show the user a browser here (the flow prefers the device
        flow when it cannot, and the server offers one)."""
        if not self.open_browser:
            return False
        if self._opener is not None:
            return True
        return system_browser_available()

    def device_flow_preferred(self, redirect_port: int | None = None) -> bool:
        """Whether the flow should use the device grant (where offered) instead of this login:
        only when no browser can be opened here and the loopback login was not asked for
        explicitly. ``open_browser=False`` (print the URL) and a fixed port (``port`` or
        ``redirect_port``, as with ``ssh -L 8765:127.0.0.1:8765``) keep the listener."""
        if not self.open_browser or self.port or redirect_port:
            return False
        return not self.browser_available()

    def _terminal_attached(self) -> bool:
        return self._input is not None or is_terminal(sys.stdin)

    # When no browser can be opened the flow may switch to the device authorization grant;
    # these give that fallback the same output and manners as DeviceLogin.

    def show(
        self,
        verification_uri: str,
        user_code: str,
        verification_uri_complete: str | None = None,
        expires_in: float | None = None,
    ) -> None:
        """Show a device code (the flow's fallback when no browser can be opened), after a
        line saying why the device flow is used: the user asked for a browser login."""
        _write(default_output(self._output), f"\n{DEVICE_FALLBACK_NOTE}\n")
        self._device().show(verification_uri, user_code, verification_uri_complete, expires_in)

    async def wait(self, interval: float) -> None:
        """Wait between device-flow polls (the flow's fallback when no browser can be opened)."""
        await self._device().wait(interval)

    async def show_device_code(self, code: ShowDeviceCode) -> None:
        self.show(
            code.verification_uri, code.user_code, code.verification_uri_complete, code.expires_in
        )

    async def sleep(self, seconds: float) -> None:
        await self.wait(seconds)

    def _device(self) -> DeviceLogin:
        if self._device_login is None:
            self._device_login = DeviceLogin(output=self._output)
        return self._device_login

    async def start(
        self, *, redirect_uri: str | None, redirect_port: int | None
    ) -> BrowserLoginSession:
        listener = open_listener(redirect_uri, port=self.port, redirect_port=redirect_port)
        if listener is not None:
            return BrowserLoginSession(self, listener.redirect_uri, listener)
        assert redirect_uri is not None
        # Not a loopback http URI (a web redirect URI registered by hand): nothing to listen
        # on; the user pastes the address the browser lands on.
        if not self._terminal_attached():
            raise AuthorizationError(
                f"the redirect URI {redirect_uri} is not a loopback address, so the browser's "
                "answer cannot be received here, and no terminal is attached to paste it "
                "into. Use a loopback redirect URI (or none), or a login callable."
            )
        return BrowserLoginSession(self, redirect_uri, None)

    def __repr__(self) -> str:
        return f"BrowserLogin(port={self.port!r}, open_browser={self.open_browser!r})"
