"""Browser login: the system browser and a loopback listener for its return (RFC 8252).

``start`` binds the listening socket on 127.0.0.1 (never 0.0.0.0) before anything else, so the
redirect URI, port included, is fixed before the client is registered, and a taken port is
reported at once. ``complete`` serves HTTP on whichever asyncio loop runs it (nothing is tied to
the loop that called ``start``), prints the authorization URL, opens the browser, and waits for
the one request that matters: ``GET {path}`` carrying this login's ``state``.

Everything else is answered and forgotten: other paths get 404 (browsers ask for
``/favicon.ico``), a wrong or missing ``state`` gets a page saying so and the wait goes on,
peers that are not loopback are dropped, and a ``Host`` that is not a loopback name is refused
(a web page that rebinds its own DNS name to 127.0.0.1 cannot drive the listener). Each
connection has its own bounded read with a deadline, so a flood of junk requests cannot keep
the real callback out.

An ``error=`` answer carrying this login's ``state`` shows an error page and ends the wait with
:class:`AuthorizationError` carrying the server's ``error`` and ``error_description``; the flow
never sees that URL. Without this login's ``state`` it is treated as any other stranger's request
(400, the wait goes on): anything on this machine, a web page included, can reach the listener,
and only the authorization server knows the state (see :mod:`mcp_client_auth.callback`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthorizationError, ConfigurationError
from ..server_text import visible_url
from .base import Login, LoginSession
from .device import DeviceLogin
from .pages import (
    CONTENT_SECURITY_POLICY,
    Page,
    bad_request_page,
    error_page,
    finished_page,
    method_not_allowed_page,
    not_found_page,
    refused_page,
    state_mismatch_page,
    success_page,
)
from .paste import PasteRejected, check_answer, read_pasted
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

__all__ = [
    "BrowserLogin",
    "BrowserLoginSession",
    "NoBrowserError",
    "Opener",
    "PortInUseError",
]

Opener = Callable[[str], bool]
"""Opens a URL in a browser; returns whether it could (``webbrowser.open`` fits)."""

HEAD_TIMEOUT = 10.0  # seconds a connection may take to send its request line and headers
WRITE_TIMEOUT = 5.0
HEAD_LIMIT = 16 * 1024  # bytes of request line and headers
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
DEVICE_FALLBACK_NOTE = "No browser can be opened here; using the device flow instead."


class NoBrowserError(AuthorizationError):
    """No browser could be opened and no terminal is attached to paste the answer into.

    Raised only where the authorization server does not offer the device authorization
    grant: where it does, the session hands the login to the flow's device grant instead
    (:attr:`LoginSession.wants_device_flow`).
    """


class PortInUseError(AuthorizationError):
    """The fixed loopback port is taken, so the browser's answer could not be received there."""

    def __init__(self, message: str, *, port: int) -> None:
        super().__init__(message)
        self.port = port


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_loopback_peer(peer: object) -> bool:
    """Whether a socket peer address (``(host, port, ...)``) is on this machine."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return False
    try:
        address = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class _Target:
    """Where to listen: from a loopback redirect URI, or a port of our own choosing."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        query: str,
        fixed_by: str | None,
        netloc: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.query = query
        self.fixed_by = fixed_by  # "registration", "port", or None for a free port
        self.netloc = netloc  # the redirect URI's own spelling, when it has one


def _loopback_target(redirect_uri: str) -> _Target | None:
    """The listener for a stored ``http`` loopback redirect URI; None for any other URI."""
    parts = urlsplit(redirect_uri)
    if parts.scheme.lower() != "http" or parts.fragment or not _is_loopback_host(parts.hostname):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or "127.0.0.1"
    bind = "127.0.0.1" if host.lower() == "localhost" else host
    return _Target(
        bind,
        port or 0,
        parts.path or "/",
        parts.query,
        "registration" if port else None,
        parts.netloc if port else None,
    )


def _bind(target: _Target) -> socket.socket:
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":  # SO_REUSEADDR there would let two listeners share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined,unused-ignore]
        else:  # rebind at once after an earlier run left the port in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((target.host, target.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        taken = exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), 10048)
        denied = exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", -1), 10013)
        if target.fixed_by == "registration":
            how = (
                "The stored client registration uses this port in its redirect URI. Stop the "
                "program using the port (perhaps another login still waiting), or log out "
                "(`mcp-client-auth logout <server>`) so the next login registers a new port."
            )
        else:
            how = (
                "Stop the program using the port (perhaps another login still waiting), or "
                "choose another port (redirect_port=... / BrowserLogin(port=...)), or leave the "
                "port unset to use a free one."
            )
        where = f"{target.host}:{target.port}"
        if taken or denied:
            what = "already in use" if taken else "not allowed for this user"
            raise PortInUseError(
                f"cannot receive the browser's sign-in answer: port {target.port} on "
                f"{target.host} is {what}. {how}",
                port=target.port,
            ) from None
        raise AuthorizationError(f"cannot listen on {where} for the sign-in answer: {exc}") from exc
    return sock


class _Outcome:
    """What a request decided: the login's answer (a URL), its failure, or nothing."""

    __slots__ = ("error", "url")

    def __init__(self, url: str | None = None, error: AuthorizationError | None = None) -> None:
        self.url = url
        self.error = error


class BrowserLoginSession(LoginSession):
    """A bound loopback listener (or, for a non-loopback redirect URI, paste-back only)."""

    def __init__(
        self,
        login: BrowserLogin,
        redirect_uri: str,
        sock: socket.socket | None,
        target: _Target | None,
    ) -> None:
        self.redirect_uri = redirect_uri
        self._login = login
        self._sock = sock
        self._target = target
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False
        self._result: asyncio.Future[_Outcome] | None = None
        self._state: str | None = None
        self._check: Callable[[str], object] | None = None
        self._claimed = False
        self._used = False
        self._status: StatusLine | None = None

    @property
    def port(self) -> int | None:
        """The listening port; None when nothing listens (a non-loopback redirect URI)."""
        return self._target.port if self._target is not None else None

    def check_callbacks_with(self, check: Callable[[str], object]) -> None:
        self._check = check

    async def complete(self, authorization_url: str, *, state: str, timeout: float) -> str:
        if self._used:
            raise AuthorizationError("this login session was already used; start a new login")
        self._used = True
        login = self._login
        output = default_output(login._output)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._state = state
        result: asyncio.Future[_Outcome] = loop.create_future()
        self._result = result
        paste_task: asyncio.Future[str] | None = None
        ticker: asyncio.Task[None] | None = None
        try:
            if self._sock is not None:
                self._server = await asyncio.start_server(
                    self._serve_connection, sock=self._sock, limit=HEAD_LIMIT
                )
                self._sock = None  # the server owns and closes it now
            listening = self._server is not None
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
            fixed_port = listening and self._target is not None and self._target.fixed_by == "port"
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
                        self.wants_device_flow = True
                        return ""
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
                    self.wants_device_flow = True
                    return ""
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
            if isinstance(answer, _Outcome):
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
        self._closing = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Abort rather than cancel: a handler whose connection is gone returns on its own
        # (cancelling it makes Python 3.11's asyncio.streams log a spurious error).
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._connections)
        if tasks:
            _, stragglers = await asyncio.wait(tasks, timeout=2.0)
            for task in stragglers:
                task.cancel()
        # Closing a transport closes its socket on a later turn of the loop; take those
        # turns now, so nothing is left open when the caller's loop ends.
        for _ in range(3):
            await asyncio.sleep(0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)

    # -- the listener ------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._closing or not _is_loopback_peer(writer.get_extra_info("peername")):
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._writers.add(writer)
        outcome: _Outcome | None = None
        answered = False
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except asyncio.LimitOverrunError:
                await self._send(
                    writer, bad_request_page("The request was too large."), head_only=False
                )
                return
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            method, page, outcome = self._answer(head)
            await self._send(writer, page, head_only=method == "HEAD")
            answered = True
        except (ConnectionError, OSError):
            pass
        finally:
            if outcome is not None and self._result is not None and not self._result.done():
                self._result.set_result(outcome)
            if answered:
                writer.close()  # flushes the page, then closes
            else:
                writer.transport.abort()
            self._writers.discard(writer)
            if task is not None:
                self._connections.discard(task)

    async def _send(self, writer: asyncio.StreamWriter, page: Page, *, head_only: bool) -> None:
        headers = (
            f"HTTP/1.1 {page.status} {page.reason}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page.body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Pragma: no-cache\r\n"
            "Referrer-Policy: no-referrer\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\n"
            f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head_only else page.body))
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    def _answer(self, head: bytes) -> tuple[str, Page, _Outcome | None]:
        """The page for one request and, for this login's answer, the outcome."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "", bad_request_page("The request was not understood."), None
        method, target_text, _ = parts
        host = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "host":
                host = value.strip().lower()
        if not self._host_allowed(host):
            return method, bad_request_page("This address only answers to 127.0.0.1."), None
        target = urlsplit(target_text)
        assert self._target is not None
        if target.path != self._target.path:
            return method, not_found_page(), None
        if method not in ("GET", "HEAD"):
            return method, method_not_allowed_page(), None
        if self._claimed:
            return method, finished_page(), None
        assert self._state is not None
        try:
            check_answer(target.query, state=self._state)
        except PasteRejected as exc:
            if exc.kind == "state":
                self._note(
                    "Ignored a sign-in answer that does not belong to this login "
                    "(its state is missing or does not match)."
                )
                return method, state_mismatch_page(), None
            return method, bad_request_page(exc.for_browser), None
        except AuthorizationError as exc:
            if method == "HEAD":  # a prefetch must not end the login
                return method, error_page(exc.error or "error", exc.description), None
            self._claimed = True
            return method, error_page(exc.error or "error", exc.description), _Outcome(error=exc)
        redirect = urlsplit(self.redirect_uri)
        url = urlunsplit((redirect.scheme, redirect.netloc, target.path, target.query, ""))
        if self._check is not None:
            try:
                self._check(url)  # the flow's own verdict (iss, RFC 9207), before "signed in"
            except AuthorizationError as exc:
                if method == "HEAD":
                    return method, refused_page(), None
                self._claimed = True
                return method, refused_page(), _Outcome(error=exc)
        if method == "HEAD":
            return method, success_page(), None
        self._claimed = True
        return method, success_page(), _Outcome(url=url)

    def _host_allowed(self, host: str | None) -> bool:
        """DNS-rebinding defence: only loopback names, on our port."""
        if host is None or self._target is None:
            return False
        allowed = {f"{name}:{self._target.port}" for name in _LOOPBACK_NAMES}
        allowed.add(urlsplit(self.redirect_uri).netloc.lower())
        return host in allowed

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
    opener: asyncio.Future[bool], result: asyncio.Future[_Outcome]
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

    def _device(self) -> DeviceLogin:
        if self._device_login is None:
            self._device_login = DeviceLogin(output=self._output)
        return self._device_login

    async def start(
        self, *, redirect_uri: str | None, redirect_port: int | None
    ) -> BrowserLoginSession:
        target = _loopback_target(redirect_uri) if redirect_uri else None
        if redirect_uri and target is None:
            # Not a loopback http URI (a web redirect URI registered by hand): nothing to
            # listen on; the user pastes the address the browser lands on.
            if not self._terminal_attached():
                raise AuthorizationError(
                    f"the redirect URI {redirect_uri} is not a loopback address, so the browser's "
                    "answer cannot be received here, and no terminal is attached to paste it "
                    "into. Use a loopback redirect URI (or none), or a login callable."
                )
            return BrowserLoginSession(self, redirect_uri, None, None)
        if target is None or target.fixed_by is None:
            if self.port and redirect_port and self.port != redirect_port:
                raise ConfigurationError(
                    f"two different loopback ports were configured: BrowserLogin(port="
                    f"{self.port}) and redirect_port={redirect_port}; set only one"
                )
            port = self.port or redirect_port or 0
            fixed_by = "port" if port else None
            if target is None:
                target = _Target("127.0.0.1", port, "/callback", "", fixed_by)
            else:
                target.port, target.fixed_by = port, fixed_by
        elif target.port in (self.port, redirect_port):
            # the stored client's port is also the one the user fixed (a second `login --port
            # N` through the same SSH tunnel): the user's port, for a browser elsewhere
            target.fixed_by = "port"
        sock = _bind(target)
        target.port = sock.getsockname()[1]
        if target.netloc is None:
            host = f"[{target.host}]" if ":" in target.host else target.host
            if redirect_uri:  # keep the stored spelling (localhost stays localhost)
                parts = urlsplit(redirect_uri)
                name = parts.hostname or host
                host = f"[{name}]" if ":" in name else name
            target.netloc = f"{host}:{target.port}"
        uri = urlunsplit(("http", target.netloc, target.path, target.query, ""))
        return BrowserLoginSession(self, uri, sock, target)

    def __repr__(self) -> str:
        return f"BrowserLogin(port={self.port!r}, open_browser={self.open_browser!r})"
