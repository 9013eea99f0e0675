"""Token records in Redis, for a fleet of hosts that share logins (``TokenStore.redis()``).

Three parts, each usable on its own:

* :class:`RedisConnections`: one redis-py asyncio client, and one
  :class:`~.redis_kv.RedisKeyValue` over it, per event loop. An asyncio client is bound to
  the loop it first ran on, and a provider uses its store from several loops (the caller's,
  the sync driver's portal thread, one ``asyncio.run()`` after another in a command-line tool).
* :class:`RedisEncryptedKeyValue`: the public :class:`~.encrypted.EncryptedKeyValue`
  (encryption the way the disk store does it, keyed-hash names, a marker naming the key,
  unreadable entries moved aside), over the per-loop Redis layer, with its marker set
  atomically in Redis.
* :class:`RedisLocks`: the cross-host lock, taken in Redis itself (redis-py's asyncio
  ``Lock``). A file lock is not enough once several hosts share the records. The lock is a
  lease: it expires ``lease`` seconds after its holder stops renewing it (the holder renews
  it every ``lease / 3`` seconds while it runs), so a holder that died or lost its network
  cannot block the fleet, while a login that takes minutes keeps it.

Nothing here is imported by ``import mcp_client_auth``: ``TokenStore.redis()`` imports this
module, and this module imports redis. Not py-key-value-aio's ``RedisStore``: its import
alone (beartype and the store framework) was more than half of a fleet process's start, so
:mod:`.redis_kv` talks to redis-py directly, and a whole process importing this module takes
0.18 s instead of 0.44 s, one that opens the store and reads one entry 0.19 s instead of
0.46 s (medians of 5 runs, ``benchmarks/README.md``; py-key-value-aio's ``AsyncKeyValue`` is
imported for type checking only).

The password of a Redis URL is never printed: :func:`redact_url` replaces it in every
description, repr, log line and error message this module makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from ..errors import StorageError
from .encrypted import DEFAULT_PREFIX, FORMAT, EncryptedKeyValue, given_keys
from .keys import ENV_KEY, Protection, load_key
from .redis_kv import SEPARATOR, RedisKeyValue

if TYPE_CHECKING:
    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = [
    "DEFAULT_PREFIX",
    "EncryptedKeyValue",
    "RedisConnections",
    "RedisEncryptedKeyValue",
    "RedisLock",
    "RedisLocks",
    "open_redis",
    "redact_url",
]

logger = logging.getLogger("mcp_client_auth.store")

SCHEMES = ("redis", "rediss", "unix")
_FIRST_DELAY = 0.002  # the lock's polling back-off: 2 ms doubling up to ``poll``


# --- URLs --------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` query field) as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at:
        name, colon, _password = user.partition(":")
        netloc = f"{name}:***@{host}" if colon else f"{name}@{host}"
    query = parts.query
    if query:
        fields = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in fields):
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in fields], safe="*"
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    text = f"{parts.scheme}://{netloc}{parts.path}"  # urlunsplit drops unix:///'s empty host
    text += f"?{query}" if query else ""
    return text + (f"#{parts.fragment}" if parts.fragment else "")


def check_url(url: str) -> None:
    """Refuse, with a clear message, a URL redis-py would not take (without echoing secrets)."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"not a Redis URL: {redact_url(url)!r}; expected redis://host:port/db, "
            "rediss://... (TLS) or unix:///path/to/socket"
        )


# --- one client per event loop -------------------------------------------------------------------


@dataclass
class _PerLoop:
    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: redis.asyncio.Redis
    kv: RedisKeyValue


class RedisConnections:
    """One redis-py asyncio client, and one :class:`RedisKeyValue` over it, per event loop.

    ``options`` go to ``redis.asyncio.Redis.from_url`` (TLS files, timeouts...). Clients of
    loops that were closed are dropped when the next one is made; :meth:`aclose` closes the
    current loop's.
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        check_url(url)
        self._url = url
        self.safe_url = redact_url(url)
        self._options: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            "socket_timeout": 10.0,
            **(options or {}),
            "decode_responses": True,  # str keys and values
        }
        self._per_loop: dict[int, _PerLoop] = {}
        self._lock = threading.Lock()

    def _current(self) -> _PerLoop:
        loop = asyncio.get_running_loop()
        entry = self._per_loop.get(id(loop))
        if entry is not None and entry.loop() is loop:
            return entry
        with self._lock:
            for ident, other in list(self._per_loop.items()):
                old = other.loop()
                if old is None or old.is_closed():
                    del self._per_loop[ident]  # its sockets go with it
            client = redis.asyncio.Redis.from_url(self._url, **self._options)
            entry = _PerLoop(weakref.ref(loop), client, RedisKeyValue(client))
            self._per_loop[id(loop)] = entry
        return entry

    @property
    def client(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop."""
        return self._current().client

    @property
    def kv(self) -> RedisKeyValue:
        """The plain key-value layer of the running event loop."""
        return self._current().kv

    def sync_client(self) -> redis.Redis:
        """A blocking client, for set-up code that runs before any event loop."""
        return redis.Redis.from_url(self._url, **self._options)

    async def aclose(self) -> None:
        """Close the running loop's client (the others close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._per_loop.pop(id(loop), None)
        if entry is not None and entry.loop() is loop:
            await entry.client.aclose()

    def __repr__(self) -> str:
        return f"RedisConnections({self.safe_url!r})"


def _redis_error(action: str, where: str, exc: Exception) -> StorageError:
    return StorageError(
        f"could not {action} Redis at {where}: {exc or type(exc).__name__}; check that the "
        "server is running and reachable from this host, and its password"
    )


# --- encryption with hashed names ------------------------------------------------------------


class RedisEncryptedKeyValue(EncryptedKeyValue):
    """:class:`~.encrypted.EncryptedKeyValue` over Redis, through the per-loop
    :class:`RedisKeyValue` of ``connections``.

    Entries are the Redis keys ``<prefix>:<hmac>::<hmac>``, as ``{"fernet": token}``; time to
    live is Redis's own. The marker is the Redis string ``<prefix>:store``, set only if absent
    (``SET NX``), so hosts starting together agree on one key.
    """

    def __init__(
        self,
        connections: RedisConnections,
        keys: Sequence[bytes],
        *,
        prefix: str = DEFAULT_PREFIX,
        default_collection: str = "default",
    ) -> None:
        self.connections = connections
        self._setup(keys, prefix, default_collection)

    def inner(self) -> AsyncKeyValue:
        kv: AsyncKeyValue = self.connections.kv  # type: ignore[assignment]
        return kv

    @property
    def where(self) -> str:
        return f"Redis at {self.connections.safe_url}"

    @property
    def marker_key(self) -> str:
        return f"{self.prefix}:store"

    async def check_key(self) -> None:
        """Write the marker on first use; refuse a key other than the one it names."""
        if self._checked:
            return
        client = self.connections.client
        marker = json.dumps({"format": FORMAT, "key_id": self._keys[0].id})
        try:
            await client.set(self.marker_key, marker, nx=True)
            text = await client.get(self.marker_key)
        except RedisError as exc:
            raise _redis_error("reach", self.connections.safe_url, exc) from exc
        try:
            found = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            found = {}
        expected = found.get("key_id") if isinstance(found, dict) else None
        self._refuse_other_key(
            expected, "pass it as TokenStore.redis(key=...) or set MCP_CLIENT_AUTH_KEY to it"
        )
        self._checked = True

    async def write_marker(self) -> None:
        """Name the newest key in the marker, the Redis string ``<prefix>:store`` (after a
        :meth:`rotate`, so the old key can be dropped)."""
        marker = json.dumps({"format": FORMAT, "key_id": self._keys[0].id})
        try:
            await self.connections.client.set(self.marker_key, marker)
        except RedisError as exc:
            raise _redis_error("write", self.connections.safe_url, exc) from exc

    async def aclose(self) -> None:
        await self.connections.aclose()

    def __repr__(self) -> str:
        return f"EncryptedKeyValue({self.connections.safe_url!r}, keys={list(self.key_ids)})"


# --- the cross-host lock -------------------------------------------------------------------------


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
            raise _redis_error(
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
        kv: RedisEncryptedKeyValue,
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


# --- opening ------------------------------------------------------------------------------------


def store_has_entries(connections: RedisConnections, prefix: str) -> bool:
    """True when Redis holds this store's marker or any of its entries (blocking; set-up)."""
    client = connections.sync_client()
    try:
        if client.exists(f"{prefix}:store"):
            return True
        for _ in client.scan_iter(match=f"{prefix}:*{SEPARATOR}*", count=100):
            return True
        return False
    except RedisError as exc:
        raise _redis_error("reach", connections.safe_url, exc) from exc
    finally:
        client.close()


def open_redis(
    url: str,
    *,
    key: str | bytes | None = None,
    require_keyring: bool = False,
    lock_timeout: float = 360.0,
    lock_lease: float = 30.0,
    prefix: str = DEFAULT_PREFIX,
    options: Mapping[str, Any] | None = None,
) -> tuple[RedisEncryptedKeyValue, RedisLocks, Protection, str]:
    """The encrypted Redis store at ``url``, its lock factory, its key's protection and its
    description.

    The key: ``key``, else ``$MCP_CLIENT_AUTH_KEY``, else the system keyring or a key file
    (:func:`~mcp_client_auth.store.keys.load_key`, under the URL without its password). Only
    that last case talks to Redis here (to know whether the store already holds entries, so a
    missing key is an error rather than a new key); otherwise the first use does.
    """
    connections = RedisConnections(url, options)
    safe = connections.safe_url
    identity = safe if prefix == DEFAULT_PREFIX else f"{safe} ({prefix})"
    if key is not None:
        if require_keyring:
            raise StorageError("require_keyring=True refuses a key given as key=")
        keys = given_keys(key)
        protection = Protection("application", "key=")
    else:
        has_entries = False if os.environ.get(ENV_KEY) else store_has_entries(connections, prefix)
        store_key = load_key(
            identity,
            require_keyring=require_keyring,
            has_entries=has_entries,
            start_over=(
                f"every host sharing this store needs the same key: pass it as "
                f"TokenStore.redis(key=...) or set {ENV_KEY} to it on each host. To start "
                f"over, delete the keys {prefix}:* from that Redis (every host logs in again)"
            ),
        )
        keys = store_key.keys
        protection = store_key.protection
    kv = RedisEncryptedKeyValue(connections, keys, prefix=prefix)
    locks = RedisLocks(connections, kv, timeout=lock_timeout, lease=lock_lease)
    joint = "from" if protection.kind in ("environment", "application") else "in"
    description = f"Redis at {safe}, encrypted; key {joint} {protection.place}"
    return kv, locks, protection, description
