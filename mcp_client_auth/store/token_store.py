"""TokenStore: the records of every protected resource, over a py-key-value-aio store.

One record per protected resource (:class:`~mcp_client_auth.tokens.ServerRecord`), keyed by
its canonical URL. The key-value store underneath is swappable (memory, the encrypted disk
store, Redis); this class adds the record model, a clear error for an unreadable record, and
the cross-process lock that keeps two processes from refreshing the same token at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from ..tokens import ServerRecord

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = ["TokenStore"]

logger = logging.getLogger("mcp_client_auth.store")

COLLECTION = "mcp-client-auth"

LockFactory = Callable[[str], "AbstractAsyncContextManager[None]"]


@contextlib.asynccontextmanager
async def _no_lock(_resource: str) -> AsyncIterator[None]:
    yield


class TokenStore:
    """Where tokens, client registrations and discovered metadata live.

    ``TokenStore(kv)`` wraps any py-key-value-aio ``AsyncKeyValue``; ``TokenStore.memory()``
    forgets on exit; ``TokenStore.default()`` keeps records encrypted on disk.
    """

    def __init__(
        self,
        kv: AsyncKeyValue,
        *,
        collection: str = COLLECTION,
        lock: LockFactory | None = None,
        description: str | None = None,
    ) -> None:
        self._kv = kv
        self._collection = collection
        self._lock_factory: LockFactory = lock or _no_lock
        self.description = description or type(kv).__name__

    @classmethod
    def memory(cls) -> TokenStore:
        """A store that lives only as long as this process."""
        from key_value.aio.stores.memory import MemoryStore

        return cls(MemoryStore(), description="in memory (forgotten on exit)")

    @property
    def kv(self) -> AsyncKeyValue:
        return self._kv

    def lock(self, resource: str) -> AbstractAsyncContextManager[None]:
        """Hold this across read-refresh-write so other processes do not refresh too."""
        return self._lock_factory(resource)

    async def get(self, resource: str) -> ServerRecord | None:
        """The record for ``resource``; ``None`` when absent or unreadable (logged, kept)."""
        try:
            data = await self._kv.get(resource, collection=self._collection)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"could not read the token store ({self.description}): {exc}") from exc
        if data is None:
            return None
        try:
            return ServerRecord.from_dict(data)
        except (ValueError, TypeError) as exc:
            logger.warning("ignoring an unreadable stored record for %s: %s", resource, exc)
            return None

    async def put(self, record: ServerRecord) -> None:
        try:
            await self._kv.put(record.resource, record.to_dict(), collection=self._collection)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"could not write the token store ({self.description}): {exc}"
            ) from exc

    async def delete(self, resource: str) -> bool:
        try:
            return await self._kv.delete(resource, collection=self._collection)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"could not delete from the token store ({self.description}): {exc}"
            ) from exc

    async def resources(self) -> list[str]:
        """Every stored resource URL, where the store can enumerate its keys."""
        keys: Any = getattr(self._kv, "keys", None)
        if keys is None:
            raise StorageError(f"this store ({self.description}) cannot list its entries")
        result: list[str] = await keys(collection=self._collection)
        return sorted(result)

    def __repr__(self) -> str:
        return f"TokenStore({self.description})"
