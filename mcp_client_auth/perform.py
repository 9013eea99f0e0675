"""What the two performers share: the provider's side of every effect that is not a request or
the lock (the store, the login strategy, the caller's assertion and subject token), and the
in-process half of the refresh lock.

``perform_sync.py`` and ``perform_async.py`` each turn an effect into a value or raise; these
coroutines are where they agree. The sync performer runs them on the sync portal (or at once,
see ``blocking.py``), the async one awaits them.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .effects import (
    CompleteLogin,
    DeleteRecord,
    GetSubjectToken,
    LoadRecord,
    SaveRecord,
    ShowDeviceCode,
    Sleep,
    StartLogin,
)
from .errors import MCPAuthError, TokenError

if TYPE_CHECKING:
    import asyncio

    from .flow_clients import FlowHttp
    from .login.base import Login, LoginSession
    from .store.token_store import TokenStore

__all__ = [
    "Context",
    "PollableLock",
    "RefreshLocks",
    "close_sessions",
    "perform_io",
]


@runtime_checkable
class PollableLock(Protocol):
    """A store lock that can be tried without waiting (the disk store's ``FileLock``).

    Other store locks (Redis's, a user's) are only entered and left as async context
    managers; the performers wait for these on an event loop.
    """

    @property
    def locked(self) -> bool: ...

    def try_acquire(self) -> bool: ...

    def retry_in(self) -> float: ...

    def release(self) -> None: ...


class RefreshLocks:
    """The in-process half of one provider's refresh lock: one for sync clients (threads),
    one per event loop for async ones. The store's lock, taken after it, spans processes."""

    def __init__(self) -> None:
        self.thread = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def for_running_loop(self) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        lock = self._by_loop.get(loop)
        if lock is None:
            lock = self._by_loop[loop] = asyncio.Lock()
        return lock


class Context:
    """What a performer needs from its provider; a run's own state lives in the performer."""

    def __init__(
        self,
        *,
        server_url: str,
        store: Callable[[], TokenStore],
        login: Callable[[], Login],
        redirect_port: int | None,
        http: FlowHttp,
        locks: RefreshLocks,
    ) -> None:
        self.server_url = server_url
        self.store = store
        self.login = login
        self.redirect_port = redirect_port
        self.http = http
        self.locks = locks

    def store_lock(self) -> Any:
        """A fresh store lock object for this resource (not yet taken)."""
        return self.store().lock(self.server_url)


async def perform_io(context: Context, effect: Any, sessions: list[LoginSession]) -> Any:
    """The value of a store, login or caller effect; a started login session joins
    ``sessions``, which the performer closes when it lets go of the lock."""
    if isinstance(effect, LoadRecord):
        return await context.store().get(context.server_url)
    if isinstance(effect, SaveRecord):
        await context.store().put(effect.record)
        return None
    if isinstance(effect, DeleteRecord):
        await context.store().delete(context.server_url)
        return None
    if isinstance(effect, StartLogin):
        session = await context.login().start(
            redirect_uri=effect.redirect_uri, redirect_port=context.redirect_port
        )
        sessions.append(session)
        return session
    if isinstance(effect, CompleteLogin):
        if effect.check is not None:
            effect.session.check_callbacks_with(effect.check)
        return await effect.session.complete(effect.url, state=effect.state, timeout=effect.timeout)
    if isinstance(effect, ShowDeviceCode):
        await context.login().show_device_code(effect)
        return None
    if isinstance(effect, Sleep):
        await context.login().sleep(effect.seconds)
        return None
    if isinstance(effect, GetSubjectToken):
        return await _subject_token(effect)
    raise MCPAuthError(f"unknown flow effect {type(effect).__name__}")  # pragma: no cover


async def close_sessions(sessions: list[LoginSession]) -> None:
    while sessions:
        await sessions.pop().aclose()


async def _subject_token(effect: GetSubjectToken) -> str:
    subject: Any = effect.source
    if not isinstance(subject, str):
        subject = subject()
        if inspect.isawaitable(subject):
            subject = await subject
    if not isinstance(subject, str) or not subject:
        raise TokenError("the subject token source returned no token")
    return subject
