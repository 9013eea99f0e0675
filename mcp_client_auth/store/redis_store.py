"""Token records in Redis, for a fleet of hosts that share logins (``TokenStore.redis()``).

* :class:`RedisLayer`: where :class:`~.encrypted.EncryptedKeyValue` keeps its entries in
  Redis, through the per-loop :class:`~.redis_connections.RedisConnections`, with its marker
  set atomically (``SET NX``);
* :class:`RedisEncryptedKeyValue`: the one encrypting class over that layer;
* :func:`open_redis`: the store, its cross-host lock (:mod:`.redis_locks`) and its key.

Nothing here is imported by ``import mcp_client_auth``: ``TokenStore.redis()`` imports this
module, and this module imports redis. Not py-key-value-aio's ``RedisStore``: its import alone
(beartype and the store framework) outweighs a fleet process's start, so :mod:`.redis_kv`
talks to redis-py directly (figures in ``benchmarks/README.md``; py-key-value-aio's
``AsyncKeyValue`` is imported for type checking only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..errors import StorageError
from .codec import FORMAT, given_keys
from .encrypted import EncryptedKeyValue
from .keys import ENV_KEY, load_key
from .kv_layer import KeyValueLayer
from .names import DEFAULT_PREFIX
from .protection import Protection
from .redis_connections import RedisConnections, redact_url, redis_error
from .redis_kv import SEPARATOR
from .redis_locks import RedisLock, RedisLocks

if TYPE_CHECKING:
    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = [
    "DEFAULT_PREFIX",
    "EncryptedKeyValue",
    "RedisConnections",
    "RedisEncryptedKeyValue",
    "RedisLayer",
    "RedisLock",
    "RedisLocks",
    "open_redis",
    "redact_url",
]


# --- encryption with hashed names ------------------------------------------------------------


class RedisLayer(KeyValueLayer):
    """Encrypted entries in Redis, through the per-loop :class:`RedisKeyValue` of
    ``connections``.

    Entries are the Redis keys ``<prefix>:<hmac>::<hmac>``, as ``{"fernet": token}``; time to
    live is Redis's own. The marker is the Redis string ``<prefix>:store``, set only if absent
    (``SET NX``), so hosts starting together agree on one key.
    """

    def __init__(self, connections: RedisConnections, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(None, prefix)
        self.connections = connections

    def inner(self) -> AsyncKeyValue:
        kv: AsyncKeyValue = self.connections.kv  # type: ignore[assignment]
        return kv

    @property
    def where(self) -> str:
        return f"Redis at {self.connections.safe_url}"

    @property
    def key_advice(self) -> str:
        return (
            "Every process sharing the store needs the same key: pass it as "
            "TokenStore.redis(key=...) or set MCP_CLIENT_AUTH_KEY to it"
        )

    @property
    def marker_key(self) -> str:
        return f"{self.prefix}:store"

    async def claim_marker(self, marker: dict[str, Any]) -> Mapping[str, Any] | None:
        client = self.connections.client
        try:
            await client.set(self.marker_key, json.dumps(marker), nx=True)
            text = await client.get(self.marker_key)
        except RedisError as exc:
            raise redis_error("reach", self.connections.safe_url, exc) from exc
        try:
            found = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            found = {}
        return found if isinstance(found, dict) else {}

    async def write_marker(self, fields: dict[str, Any]) -> None:
        """Name the newest key in the marker (after a rotation, so the old key can go)."""
        marker = json.dumps({"format": FORMAT, **fields})
        try:
            await self.connections.client.set(self.marker_key, marker)
        except RedisError as exc:
            raise redis_error("write", self.connections.safe_url, exc) from exc


class RedisEncryptedKeyValue(EncryptedKeyValue):
    """:class:`~.encrypted.EncryptedKeyValue` over Redis (a :class:`RedisLayer`)."""

    def __init__(
        self,
        connections: RedisConnections,
        keys: Sequence[bytes],
        *,
        prefix: str = DEFAULT_PREFIX,
        default_collection: str = "default",
    ) -> None:
        self.connections = connections
        self.prefix = prefix
        self.open(RedisLayer(connections, prefix), keys, default_collection)

    async def aclose(self) -> None:
        await self.connections.aclose()

    def __repr__(self) -> str:
        return f"EncryptedKeyValue({self.connections.safe_url!r}, keys={list(self.key_ids)})"


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
        raise redis_error("reach", connections.safe_url, exc) from exc
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
