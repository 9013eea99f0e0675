"""The plain key-value layer under ``TokenStore.redis()``: redis-py's asyncio client, directly.

:class:`RedisKeyValue` has the few calls :class:`~.kv_layer.KeyValueLayer` makes:
get, get_many, ttl, put (with a time to live), delete, keys, and an atomic move. It replaces
py-key-value-aio's ``RedisStore``, whose import alone costs more than the whole
``mcp-client-auth token`` call on the disk store (figures in ``benchmarks/README.md``).

The layout in Redis, the one ``RedisStore`` used, so hosts on a release before this module and
hosts after it share a store during an upgrade:

* the entry ``key`` of ``collection`` is the Redis string ``<collection>::<key>``;
* its value is the JSON document ``{"version": 1, "value": {...}}`` (``RedisStore`` also wrote
  ``key``, ``collection``, ``created_at`` and ``expires_at``; they are ignored when read);
* a time to live is Redis's own: ``SET ... PX <ms>``, read back with ``PTTL``; Redis deletes
  the entry when it runs out.

A value that is not such a document (written by something else) reads as absent, with a
warning naming its Redis key: the layer above treats it as it treats any missing entry.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import redis.asyncio
from redis.exceptions import WatchError

__all__ = ["SEPARATOR", "RedisKeyValue"]

logger = logging.getLogger("mcp_client_auth.store")

SEPARATOR = "::"
VERSION = 1
_GLOB_SPECIAL = frozenset("\\*?[]")


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


class RedisKeyValue:
    """Entries as JSON strings in Redis, one Redis key per (collection, key); see the module.

    ``client`` is used, never closed. ``scan_count`` is the ``COUNT`` hint of each ``SCAN``
    call :meth:`keys` makes.
    """

    def __init__(self, client: redis.asyncio.Redis, *, scan_count: int = 1000) -> None:
        if scan_count < 1:
            raise ValueError("scan_count must be at least 1")
        self.client = client
        self.scan_count = scan_count

    @staticmethod
    def redis_key(key: str, collection: str) -> str:
        """The Redis key of ``key`` in ``collection``."""
        return f"{collection}{SEPARATOR}{key}"

    def _value(self, name: str, raw: str | bytes | None) -> dict[str, Any] | None:
        """The value in the document ``raw`` read at ``name``; None when absent or unreadable."""
        if raw is None:
            return None
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
            document = None
        value = document.get("value") if isinstance(document, dict) else None
        if not isinstance(value, dict):
            logger.warning(
                "ignoring the Redis key %s: its value is not a JSON document of this store's "
                'layout ({"version": 1, "value": {...}})',
                name,
            )
            return None
        return value

    async def get(self, key: str, *, collection: str) -> dict[str, Any] | None:
        name = self.redis_key(key, collection)
        return self._value(name, await self.client.get(name))

    async def get_many(
        self, keys: Sequence[str], *, collection: str
    ) -> list[dict[str, Any] | None]:
        """The values of ``keys`` (None for each one absent), in one ``MGET``."""
        if not keys:
            return []
        names = [self.redis_key(k, collection) for k in keys]
        raws = await self.client.mget(names)
        return [self._value(n, r) for n, r in zip(names, raws, strict=True)]

    async def ttl(self, key: str, *, collection: str) -> tuple[dict[str, Any] | None, float | None]:
        """The value and its remaining seconds (None: it never expires), in one round trip."""
        name = self.redis_key(key, collection)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            raw, pttl = await pipe.execute()
        value = self._value(name, raw)
        if value is None:
            return None, None
        return value, (pttl / 1000 if pttl >= 0 else None)  # -1: no expiry

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Write ``value`` (a JSON object); with ``ttl``, Redis drops it that many seconds later."""
        if not isinstance(value, Mapping):
            raise TypeError("values are mappings (JSON objects)")
        px = None
        if ttl is not None:
            if isinstance(ttl, bool) or not 0 < float(ttl) < math.inf:
                raise ValueError(f"ttl is a positive number of seconds, not {ttl!r}")
            px = max(1, math.ceil(float(ttl) * 1000))  # milliseconds, rounded up
        document = json.dumps({"version": VERSION, "value": dict(value)}, separators=(",", ":"))
        await self.client.set(self.redis_key(key, collection), document, px=px)

    async def delete(self, key: str, *, collection: str) -> bool:
        """Delete the entry; True when there was one."""
        return bool(await self.client.delete(self.redis_key(key, collection)))

    async def move_if_unchanged(
        self, key: str, new_key: str, *, collection: str, expected: Mapping[str, Any]
    ) -> bool:
        """Rename ``key`` to ``new_key`` if its value is still ``expected``; True when moved.

        One transaction (``WATCH``, then ``RENAME`` in ``MULTI``): a writer that replaces the
        entry meanwhile keeps its new entry, and the moved one keeps its bytes and its time to
        live.
        """
        name, target = self.redis_key(key, collection), self.redis_key(new_key, collection)
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(name)
                if self._value(name, await pipe.get(name)) != dict(expected):
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.rename(name, target)
                await pipe.execute()
            except WatchError:  # changed between the read and the rename
                return False
        return True

    async def keys(self, collection: str, *, limit: int | None = None) -> list[str]:
        """The keys of ``collection`` (at most ``limit``), by ``SCAN`` (never ``KEYS``).

        ``SCAN`` may return a key twice; each is listed once. A key written or deleted while
        the scan runs may or may not be listed.
        """
        prefix = collection + SEPARATOR
        pattern = _glob_escape(prefix) + "*"
        found: dict[str, None] = {}
        cursor = 0
        while limit is None or len(found) < limit:
            cursor, page = await self.client.scan(cursor, match=pattern, count=self.scan_count)
            for name in page:
                text = name.decode() if isinstance(name, bytes) else name
                found[text[len(prefix) :]] = None
                if limit is not None and len(found) >= limit:
                    break
            if cursor == 0:
                break
        return list(found)

    def __repr__(self) -> str:
        return f"RedisKeyValue(scan_count={self.scan_count})"
