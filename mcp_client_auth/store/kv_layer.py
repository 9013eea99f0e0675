"""Encrypted entries kept in a plain key-value store (any py-key-value-aio ``AsyncKeyValue``).

The :class:`~.capabilities.EntryLayer` of :class:`~.encrypted.EncryptedKeyValue` over such a
store, and (through :class:`~.redis_store.RedisLayer`) over our own Redis layer:

* an entry of the hashed collection ``C`` named ``N`` is the key ``N`` of the collection
  ``<prefix>:C``, its value the mapping ``{"fernet": token}``;
* the marker is the key ``store`` of the collection ``prefix``;
* an entry is renamed in one step where the store can (:class:`~.capabilities.MovesIfUnchanged`,
  our Redis layer); elsewhere a copy is put, then the entry is read again and deleted only if
  it still holds what was read, so a login written during the copy is kept (a small window
  remains between that read and the delete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from .capabilities import Listing, MovesIfUnchanged
from .codec import FORMAT
from .names import DEFAULT_PREFIX

if TYPE_CHECKING:
    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = ["DEFAULT_PREFIX", "MARKER_KEY", "KeyValueLayer"]

MARKER_KEY = "store"


class KeyValueLayer:
    """Encrypted entries in ``kv``, under collections named ``<prefix>:<hash>``."""

    never_suspends = False

    def __init__(self, kv: AsyncKeyValue | None, prefix: str = DEFAULT_PREFIX) -> None:
        self._kv = kv
        self.prefix = prefix

    def inner(self) -> AsyncKeyValue:
        """The store underneath (a subclass may pick one per event loop)."""
        if self._kv is None:
            raise NotImplementedError("a KeyValueLayer without a store must override inner()")
        return self._kv

    @property
    def where(self) -> str:
        return f"the store {type(self.inner()).__name__}"

    @property
    def key_advice(self) -> str:
        return (
            "Every process sharing the store needs the same key: pass it as "
            "EncryptedKeyValue(kv, key=...)"
        )

    def collection(self, folder: str) -> str:
        """The collection underneath that holds the hashed collection ``folder``."""
        return f"{self.prefix}:{folder}"

    def describe(self, folder: str, name: str) -> str:
        return f"{self.collection(folder)}::{name} in {self.where}"

    def token(self, stored: Any) -> bytes | None:
        token = stored.get("fernet") if isinstance(stored, Mapping) else None
        if not isinstance(token, str):
            return None
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            return b"?"  # not a Fernet token: it reads as one that cannot be decrypted

    def wrap(self, token: bytes) -> dict[str, Any]:
        return {"fernet": token.decode("ascii")}

    async def get(self, folder: str, name: str) -> Any | None:
        return await self.inner().get(name, collection=self.collection(folder))

    async def get_many(self, folder: str, names: Sequence[str]) -> list[Any | None]:
        if not names:
            return []
        found = await self.inner().get_many(list(names), collection=self.collection(folder))
        return list(found)

    async def put(self, folder: str, name: str, stored: Any, *, ttl: float | None) -> None:
        await self.inner().put(name, stored, collection=self.collection(folder), ttl=ttl)

    async def delete(self, folder: str, name: str) -> bool:
        return await self.inner().delete(name, collection=self.collection(folder))

    async def names(self, folder: str) -> list[str]:
        inner = self.inner()
        if not isinstance(inner, Listing):
            raise StorageError(f"{self.where} cannot list its entries")
        return await inner.keys(collection=self.collection(folder))

    async def move_if_unchanged(self, folder: str, name: str, new_name: str, stored: Any) -> bool:
        inner, collection, expected = self.inner(), self.collection(folder), dict(stored)
        if isinstance(inner, MovesIfUnchanged):  # one transaction (our Redis layer)
            return await inner.move_if_unchanged(
                name, new_name, collection=collection, expected=expected
            )
        if await inner.get(name, collection=collection) != expected:
            return False
        await inner.put(new_name, expected, collection=collection)
        if await inner.get(name, collection=collection) != expected:
            return False  # replaced while the copy was put: the copy stays aside, harmless
        await inner.delete(name, collection=collection)
        return True

    async def claim_marker(self, marker: dict[str, Any]) -> Mapping[str, Any] | None:
        inner = self.inner()
        found = await inner.get(MARKER_KEY, collection=self.prefix)
        if found is None:
            await inner.put(MARKER_KEY, marker, collection=self.prefix)
            return marker
        return found

    async def write_marker(self, fields: dict[str, Any]) -> None:
        await self.inner().put(MARKER_KEY, {"format": FORMAT, **fields}, collection=self.prefix)
