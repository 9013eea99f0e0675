"""The cross-host lock of ``TokenStore.redis()``, taken in Redis itself.

A file lock is not enough once several hosts share the records. The lock is redis-py's asyncio
``Lock``, held as a lease: it expires ``lease`` seconds after its holder stops renewing it (the
holder renews it every ``lease / 3`` seconds while it runs), so a holder that died or lost its
network cannot block the fleet, while a login that takes minutes keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING

import redis.asyncio
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from ..errors import StorageError
from .redis_connections import RedisConnections, redis_error

if TYPE_CHECKING:
    from .encrypted import EncryptedKeyValue

__all__ = ["RedisLock", "RedisLocks"]

logger = logging.getLogger("mcp_client_auth.store")

_FIRST_DELAY = 0.002  # the lock's polling back-off: doubling from this up to ``poll``


class RedisLock:
    """One resource's lock in Redis: an async context manager, a lease renewed while held.

    Not reentrant. ``timeout`` bounds the wait; ``lease`` is how long the lock outlives a
    holder that stopped renewing it.
    """

    def __init__(
        self,
        connections: RedisConnections,
        name: str,
        *,
        timeout: float,
        lease: float,
        what: str,
        poll: float = 0.05,
    ) -> None:
        self.connections = connections
        self.name = name
        self.timeout = timeout
        self.lease = lease
        self.what = what
        self.poll = poll
        self._lock: redis.asyncio.lock.Lock | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        lock = self.connections.client.lock(
            self.name,
            timeout=self.lease,
            blocking=False,
            thread_local=False,  # taken and released by this object only
        )
        # Our own wait rather than redis-py's: it gives up one poll interval early, and a
        # growing back-off hands the lock over sooner than a fixed interval.
        deadline = time.monotonic() + self.timeout
        delay = _FIRST_DELAY
        try:
            while not (held := await lock.acquire(blocking=False)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, self.poll)
        except RedisError as exc:
            raise redis_error(
                f"take the lock on {self.what} in", self.connections.safe_url, exc
            ) from exc
        if not held:
            raise StorageError(
                f"waited {self.timeout:g} s for the lock on {self.what} in Redis at "
                f"{self.connections.safe_url}: another process (on this host or another) "
                "holds it, most likely a login waiting for the browser or a slow refresh. "
                "Finish or stop that process and try again (a holder that dies frees the "
                f"lock within {self.lease:g} s)."
            )
        self._lock = lock
        self._renewer = asyncio.get_running_loop().create_task(self._renew(lock))

    async def _renew(self, lock: redis.asyncio.lock.Lock) -> None:
        """Keep the lease while held: reset its time to live every third of it."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await lock.reacquire()
            except LockNotOwnedError:
                logger.warning(
                    "lost the lock on %s in Redis at %s: it expired before it could be "
                    "renewed (was this process paused for more than %g s?); another process "
                    "may refresh at the same time",
                    self.what,
                    self.connections.safe_url,
                    self.lease,
                )
                return
            except (RedisError, LockError) as exc:
                logger.warning(
                    "could not renew the lock on %s in Redis at %s: %s",
                    self.what,
                    self.connections.safe_url,
                    exc,
                )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lock, self._lock = self._lock, None
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if lock is None:
            return
        try:
            await lock.release()
        except LockNotOwnedError:
            logger.warning(
                "the lock on %s in Redis at %s had expired before it was released",
                self.what,
                self.connections.safe_url,
            )
        except (RedisError, LockError) as exc:
            logger.warning(
                "could not release the lock on %s in Redis at %s (it expires within %g s): %s",
                self.what,
                self.connections.safe_url,
                self.lease,
                exc,
            )

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._lock is not None

    def __repr__(self) -> str:
        return f"RedisLock({self.name!r}, locked={self.locked})"


class RedisLocks:
    """The lock factory a :class:`~mcp_client_auth.store.TokenStore` takes as ``lock=``.

    Lock names are keyed hashes of the resource (``<prefix>:lock:<hmac>``), the same on every
    host that has the store's key.
    """

    def __init__(
        self,
        connections: RedisConnections,
        kv: EncryptedKeyValue,
        *,
        timeout: float = 360.0,
        lease: float = 30.0,
    ) -> None:
        if lease <= 0:
            raise ValueError("lock_lease must be positive")
        self.connections = connections
        self.kv = kv
        self.timeout = timeout
        self.lease = lease

    def __call__(self, resource: str) -> RedisLock:
        return RedisLock(
            self.connections,
            self.kv.lock_name(resource),
            timeout=self.timeout,
            lease=self.lease,
            what=resource,
        )

    def __repr__(self) -> str:
        return (
            f"RedisLocks({self.connections.safe_url!r}, timeout={self.timeout:g}, "
            f"lease={self.lease:g})"
        )
