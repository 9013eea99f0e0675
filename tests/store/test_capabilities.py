"""The optional abilities of a store, found through the typed protocols of ``capabilities``.

What is proved: ``TokenStore`` asks a store underneath for an ability only when it has the
method (a store of one's own with nothing but get/put/delete still stores and reads records,
and says plainly that it cannot list them; one that lists its keys is listed through them);
and our own stores offer exactly the abilities their layer gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat

import pytest
from key_value.aio.stores.memory import MemoryStore

from mcp_client_auth import EncryptedKeyValue, StorageError, TokenStore
from mcp_client_auth.store.capabilities import (
    Closes,
    InFolder,
    Listing,
    ListsFolders,
    ListsItems,
    ListsUnreadable,
    NeverSuspends,
    SetsAside,
)
from mcp_client_auth.store.disk import EncryptedFileStore
from mcp_client_auth.tokens import ServerRecord

KEY = bytes(range(32))
URL = "https://server.example.com/mcp"


class Plain:
    """A key-value store of one's own with the four calls a record needs and nothing else."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        return self.data.get((collection or "", key))

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        self.data[(collection or "", key)] = dict(value)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        return self.data.pop((collection or "", key), None) is not None

    async def get_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[dict[str, Any] | None]:
        return [await self.get(k, collection=collection) for k in keys]


class Listed(Plain):
    """The same, able to list the keys of a collection."""

    async def keys(self, collection: str | None = None, *, limit: int | None = None) -> list[str]:
        return [k for c, k in self.data if c == (collection or "")][:limit]


async def test_a_store_without_abilities_keeps_records_and_says_it_cannot_list() -> None:
    kv = Plain()
    store = TokenStore(kv)  # type: ignore[arg-type]
    await store.put(ServerRecord(URL))
    assert await store.get(URL) == ServerRecord(URL)
    assert not store.never_suspends
    assert store.directory is None
    assert store.unreadable_files() == []
    assert store.description == "Plain"
    assert store.protection.kind == "custom"
    with pytest.raises(StorageError, match="cannot list its entries"):
        await store.records()
    with pytest.raises(StorageError, match="cannot list its entries"):
        await store.resources()
    await store.aclose()  # nothing to close: no error


async def test_a_store_that_lists_its_keys_is_listed_through_them() -> None:
    store = TokenStore(Listed())  # type: ignore[arg-type]
    for name in ("b", "a"):
        await store.put(ServerRecord(f"https://{name}.example.com/mcp"))
    assert await store.resources() == ["https://a.example.com/mcp", "https://b.example.com/mcp"]
    assert [r.resource for r in await store.records()] == await store.resources()


def test_the_abilities_of_our_stores(tmp_path: Path) -> None:
    files = EncryptedFileStore(tmp_path, [KEY])
    for ability in (Listing, ListsItems, SetsAside, InFolder, ListsUnreadable, NeverSuspends):
        assert isinstance(files, ability), ability
    assert files.never_suspends is True
    assert isinstance(files.layer, ListsFolders)
    assert TokenStore(files).never_suspends

    over_memory = EncryptedKeyValue(MemoryStore(), key=KEY)
    for ability in (Listing, ListsItems, SetsAside):
        assert isinstance(over_memory, ability), ability
    for ability in (InFolder, ListsUnreadable, Closes):
        assert not isinstance(over_memory, ability), ability
    assert not isinstance(over_memory.layer, ListsFolders)
    assert not TokenStore(over_memory).never_suspends
