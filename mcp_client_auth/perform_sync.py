"""The sync performer: each effect of one run, for a sync client, as a value or an error.

A sync client cannot await, so the store's and the login's coroutines run on the sync portal
(a daemon thread with its own event loop, ``_portal.py``), except those of a store that never
suspends (``blocking.py``): reading, writing and deleting the default store's records then
starts no thread and imports no asyncio, so a refresh does neither while it holds the lock.

The flow's requests go out from this thread with a sync client of the request's library, as
the caller's own requests do; their total deadline is kept by ``deadline_watch.py``. Only a
transport of the user's that serves async clients alone is driven on the portal's event loop.
A refresh holds the store's lock while it runs, and every process waiting for the new token
waits for it too: a sync send needs no event loop, no anyio and no second client library.
"""

from __future__ import annotations

import time
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .blocking import finish_now, on_portal, run_blocking
from .effects import (
    AcquireLock,
    DeleteRecord,
    HttpRequest,
    LoadRecord,
    ReleaseLock,
    SaveRecord,
    TryLock,
)
from .flow_http import send_async, send_sync
from .perform import Context, PollableLock, close_sessions, perform_io

if TYPE_CHECKING:
    from .login.base import LoginSession

__all__ = ["SyncPerformer"]


class SyncPerformer:
    """What one run of the steps holds for a sync client: the refresh lock, the login
    sessions it opened, and the provider's own client for the flow's requests."""

    def __init__(self, context: Context, library: ModuleType) -> None:
        self._context = context
        self._library = library
        self._sessions: list[LoginSession] = []
        self._store_lock: Any = None  # set while the in-process lock is held
        self._clients: dict[bool, Any] = {}  # by FlowHttp.kind_of, made on first use
        self._synchronous = context.http.serves(library, asynchronous=False)

    def perform(self, effect: Any) -> Any:
        if isinstance(effect, HttpRequest):
            return self._send(effect)
        if isinstance(effect, (AcquireLock, TryLock)):
            return self._lock(wait=isinstance(effect, AcquireLock))
        if isinstance(effect, ReleaseLock):
            self._release()
            return None
        if isinstance(effect, (LoadRecord, SaveRecord, DeleteRecord)) and (
            self._context.store().never_suspends
        ):
            if isinstance(effect, LoadRecord):
                return run_blocking(partial(perform_io, self._context, effect, self._sessions))
            return finish_now(perform_io(self._context, effect, self._sessions))
        return on_portal(perform_io(self._context, effect, self._sessions))

    def close(self) -> None:
        """The end of the run: let go of what it still holds, and close its client."""
        try:
            self._release()
        finally:
            clients, self._clients = list(self._clients.values()), {}
            for client in clients:
                if self._synchronous:
                    self._context.http.release_sync(client)
                else:
                    on_portal(self._context.http.release_async(client))

    # -- the flow's requests ----------------------------------------------------------------

    def _send(self, effect: HttpRequest) -> Any:
        client = self._client_for(effect.url)
        if self._synchronous:
            return send_sync(client, effect)
        return on_portal(send_async(client, effect))

    def _client_for(self, url: str) -> Any:
        http = self._context.http
        return http.client_for(
            self._clients, self._library, url, asynchronous=not self._synchronous
        )

    # -- the refresh lock -------------------------------------------------------------------

    def _lock(self, *, wait: bool) -> bool:
        """The in-process lock, then the store's: whether held (``wait``: until it is).

        A store lock that can be polled (the disk store's) is tried from this thread; others
        are entered through the sync portal. A later try of a waiting run first sleeps as
        long as the store's lock says.
        """
        lock = self._store_lock
        if lock is None:
            lock = self._first_try()
            held = not isinstance(lock, PollableLock) or lock.locked
        elif not isinstance(lock, PollableLock) or lock.locked:
            return True
        else:
            time.sleep(lock.retry_in())
            held = lock.try_acquire()
        while wait and not held:
            time.sleep(lock.retry_in())
            held = lock.try_acquire()
        return held

    def _first_try(self) -> Any:
        thread_lock = self._context.locks.thread
        thread_lock.acquire()
        try:
            lock = self._context.store_lock()
            if isinstance(lock, PollableLock):
                self._store_lock = lock  # held or waited for: _release lets go of either
                lock.try_acquire()
            else:
                on_portal(lock.__aenter__())
                self._store_lock = lock
            return lock
        except BaseException:
            if self._store_lock is None:
                thread_lock.release()
            raise

    def _release(self) -> None:
        """Close the sessions, then let go of the lock; nothing to do when nothing is held."""
        if self._sessions:
            on_portal(close_sessions(self._sessions))
        lock, self._store_lock = self._store_lock, None
        if lock is None:
            return
        try:
            if isinstance(lock, PollableLock):
                lock.release()  # held, or still waited for
            else:
                on_portal(lock.__aexit__(None, None, None))
        finally:
            self._context.locks.thread.release()
