"""The async performer: each effect of one run, for an async client (or a call without a
request: ``aget_token``, ``alogin``, ``alogout``), as a value or an error.

The flow's requests go through the provider's own async client; a transport of the user's that
serves only sync clients is driven from a worker thread. Waits between tries at the store's
lock sleep with anyio, so they hold under asyncio and trio alike.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from .effects import AcquireLock, HttpRequest, ReleaseLock, TryLock
from .flow_http import send_async, send_sync
from .perform import Context, PollableLock, close_sessions, perform_io

if TYPE_CHECKING:
    import asyncio

    from .login.base import LoginSession

__all__ = ["AsyncPerformer"]


class AsyncPerformer:
    """What one run of the steps holds for an async client: the refresh lock, the login
    sessions it opened, and the provider's own client for the flow's requests."""

    def __init__(self, context: Context, library: ModuleType) -> None:
        self._context = context
        self._library = library
        self._sessions: list[LoginSession] = []
        self._locked: tuple[asyncio.Lock, Any] | None = None  # the in-process lock is held
        self._clients: dict[bool, Any] = {}  # by FlowHttp.kind_of, made on first use
        self._asynchronous = context.http.serves(library, asynchronous=True)

    async def perform(self, effect: Any) -> Any:
        if isinstance(effect, HttpRequest):
            return await self._send(effect)
        if isinstance(effect, (AcquireLock, TryLock)):
            return await self._lock(wait=isinstance(effect, AcquireLock))
        if isinstance(effect, ReleaseLock):
            await self._release()
            return None
        return await perform_io(self._context, effect, self._sessions)

    async def close(self) -> None:
        """The end of the run: let go of what it still holds, and close its client."""
        try:
            await self._release()
        finally:
            clients, self._clients = list(self._clients.values()), {}
            for client in clients:
                if self._asynchronous:
                    await self._context.http.release_async(client)
                else:
                    self._context.http.release_sync(client)

    # -- the flow's requests ----------------------------------------------------------------

    async def _send(self, effect: HttpRequest) -> Any:
        client = self._client_for(effect.url)
        if self._asynchronous:
            return await send_async(client, effect)
        import asyncio

        return await asyncio.to_thread(send_sync, client, effect)  # a sync transport

    def _client_for(self, url: str) -> Any:
        asynchronous = self._asynchronous
        return self._context.http.client_for(
            self._clients, self._library, url, asynchronous=asynchronous
        )

    # -- the refresh lock -------------------------------------------------------------------

    async def _lock(self, *, wait: bool) -> bool:
        """The in-process lock, then the store's: whether held (``wait``: until it is).

        A later try of a waiting run first sleeps as long as the store's lock says."""
        if self._locked is None:
            lock = await self._first_try()
            held = not isinstance(lock, PollableLock) or lock.locked
        else:
            lock = self._locked[1]
            if not isinstance(lock, PollableLock) or lock.locked:
                return True
            held = await _retry(lock)
        while wait and not held:
            held = await _retry(lock)
        return held

    async def _first_try(self) -> Any:
        in_process = self._context.locks.for_running_loop()
        await in_process.acquire()
        try:
            lock = self._context.store_lock()
            if isinstance(lock, PollableLock):
                self._locked = (in_process, lock)  # held or waited for: _release ends either
                lock.try_acquire()
            else:
                await lock.__aenter__()
                self._locked = (in_process, lock)
            return lock
        except BaseException:
            if self._locked is None:
                in_process.release()
            raise

    async def _release(self) -> None:
        """Close the sessions, then let go of the lock; nothing to do when nothing is held."""
        await close_sessions(self._sessions)
        if self._locked is None:
            return
        in_process, lock = self._locked
        self._locked = None
        try:
            if isinstance(lock, PollableLock):
                lock.release()  # held, or still waited for
            else:
                await lock.__aexit__(None, None, None)
        finally:
            in_process.release()


async def _retry(lock: PollableLock) -> bool:
    import anyio

    await anyio.sleep(lock.retry_in())
    return lock.try_acquire()
