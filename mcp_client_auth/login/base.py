"""The login contract: how the flow hands the user an authorization URL and gets the answer.

A :class:`Login` is started once per interactive authorization. ``start`` fixes the redirect
URI (a loopback listener binds its port here, before registration needs the URI); the
session's ``complete`` shows the authorization URL to the user and returns the full URL the
browser was sent back to (with ``code``, ``state``, ``iss`` or ``error``). The flow, not the
login, checks ``state`` and ``iss``; a login that can tell a forged callback from the real one
(the loopback listener) also checks ``state`` itself so a wrong one does not end the wait.

Where the authorization server offers the device grant (RFC 8628), the flow says so
(:meth:`LoginSession.offer_device_flow`); a session that then finds no way to reach the user
answers :class:`UseDeviceFlow` instead of a URL, and the flow shows a device code through the
login (:meth:`Login.show_device_code`) and waits between its polls (:meth:`Login.sleep`).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..effects import ShowDeviceCode

__all__ = [
    "CallbackLogin",
    "Login",
    "LoginCallable",
    "LoginSession",
    "UseDeviceFlow",
    "loopback_redirect_uri",
]

LoginCallable = Callable[[str], str | Awaitable[str]]


def loopback_redirect_uri(port: int) -> str:
    """The redirect URI of a loopback listener on ``port`` (RFC 8252 7.3: an IP literal)."""
    return f"http://127.0.0.1:{port}/callback"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class UseDeviceFlow:
    """The answer of a session that cannot reach the user (no browser opens, no terminal to
    paste into) where the device grant was offered: the flow runs the device grant instead."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UseDeviceFlow)

    def __hash__(self) -> int:
        return hash(UseDeviceFlow)

    def __repr__(self) -> str:
        return "UseDeviceFlow()"


class LoginSession(abc.ABC):
    """One interactive authorization in progress."""

    redirect_uri: str

    @abc.abstractmethod
    async def complete(
        self, authorization_url: str, *, state: str, timeout: float
    ) -> str | UseDeviceFlow:
        """Take the user through ``authorization_url``; return the URL they were sent back to
        (or :class:`UseDeviceFlow`, only after :meth:`offer_device_flow`)."""

    def offer_device_flow(self) -> None:
        """Called by the flow before :meth:`complete` when the authorization server offers the
        device grant: a session that then finds no way to reach the user may answer
        :class:`UseDeviceFlow`. Others ignore it."""
        return None

    async def aclose(self) -> None:
        """Release what ``start`` acquired (a listening socket, say). Safe to call twice."""
        return None

    def check_callbacks_with(self, check: Callable[[str], object]) -> None:
        """The flow's own check of a callback URL (state, RFC 9207 ``iss``, a code), given
        before :meth:`complete`. A session that shows the user a page (the loopback listener)
        uses it to say "refused" rather than "signed in" for an answer the flow will refuse.
        Others may ignore it: the flow checks the URL :meth:`complete` returns in any case."""
        return None


class Login(abc.ABC):
    """A strategy for the interactive step: browser, paste-back, device code, or your own."""

    @abc.abstractmethod
    async def start(self, *, redirect_uri: str | None, redirect_port: int | None) -> LoginSession:
        """Prepare a login; ``redirect_uri`` is the stored registration's, when there is one."""

    async def show_device_code(self, code: ShowDeviceCode) -> None:
        """Tell the user where to enter the device code (RFC 8628 3.3). By default one line on
        stderr; what the server sent is cleaned before it reaches the terminal."""
        from ..server_text import clean_text, visible_url

        where = visible_url(code.verification_uri_complete or code.verification_uri)
        user_code = clean_text(code.user_code, 64)
        print(f"To sign in, open {where} and enter the code {user_code}", file=sys.stderr)

    async def sleep(self, seconds: float) -> None:
        """Wait between the device grant's polls (a login may show that it is waiting)."""
        await asyncio.sleep(seconds)


class _CallbackSession(LoginSession):
    def __init__(self, func: LoginCallable, redirect_uri: str) -> None:
        self._func = func
        self.redirect_uri = redirect_uri

    async def complete(self, authorization_url: str, *, state: str, timeout: float) -> str:
        async def call() -> str:
            if inspect.iscoroutinefunction(self._func):
                result = await self._func(authorization_url)
            else:
                result = await asyncio.to_thread(self._func, authorization_url)
                if inspect.isawaitable(result):
                    result = await result
            return str(result)

        from ..errors import AuthorizationError

        try:
            return await asyncio.wait_for(call(), timeout)
        except asyncio.TimeoutError:
            raise AuthorizationError(
                f"the login did not finish within {timeout:g} s; try again"
            ) from None


class CallbackLogin(Login):
    """Adapts a plain callable ``(authorization_url) -> redirected_url``, sync or async.

    With no redirect URI given, the redirect URI is ``http://127.0.0.1:{port}/callback``, on a
    free port unless ``redirect_port`` fixes one. Nothing listens there: the callable is the
    whole login.
    """

    def __init__(self, func: LoginCallable) -> None:
        self._func = func

    async def start(self, *, redirect_uri: str | None, redirect_port: int | None) -> LoginSession:
        uri = redirect_uri or loopback_redirect_uri(redirect_port or free_loopback_port())
        return _CallbackSession(self._func, uri)

    def __repr__(self) -> str:
        return f"CallbackLogin({getattr(self._func, '__qualname__', 'callable')})"
