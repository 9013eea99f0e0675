"""Setting aside a non-record on a store with no atomic move, while a login is written.

What is proved: over a plain ``AsyncKeyValue`` and over ``EncryptedKeyValue`` on one (neither
has ``move_if_unchanged``), a record written by another task while the unreadable value's aside
copy is being put survives: the original is deleted only if it still holds the unreadable value.
The store holds the aside copy's put until the writer is done, so the interleaving is the same
on every run; without the concurrent writer, the value is moved aside as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, SupportsFloat

import pytest
from cryptography.fernet import Fernet
from key_value.aio.protocols.key_value import AsyncKeyValue
from key_value.aio.stores.memory import MemoryStore

from mcp_client_auth import EncryptedKeyValue, TokenStore
from mcp_client_auth.store.aside import UNREADABLE
from mcp_client_auth.store.token_store import COLLECTION
from mcp_client_auth.tokens import ServerRecord

URL = "https://mcp.example.com/mcp"
KEY = Fernet.generate_key().decode()
NOT_A_RECORD = {"not": "a record"}

WRAPPERS: dict[str, Callable[[AsyncKeyValue], AsyncKeyValue]] = {
    "plain": lambda inner: inner,
    "encrypted": lambda inner: EncryptedKeyValue(inner, key=KEY),
}


class HeldAside(MemoryStore):
    """A store whose put of an aside copy yields to the loop until ``release`` is set, as the
    network round trip of any real store does; counts those puts."""

    def __init__(self) -> None:
        super().__init__()
        self.aside_started = asyncio.Event()
        self.release = asyncio.Event()
        self.aside_puts = 0

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        if UNREADABLE in key:
            self.aside_puts += 1
            self.aside_started.set()
            await self.release.wait()
        await super().put(key, value, collection=collection, ttl=ttl)


async def unreadable_store(
    wrap: Callable[[AsyncKeyValue], AsyncKeyValue],
) -> tuple[HeldAside, TokenStore]:
    inner = HeldAside()
    store = TokenStore(wrap(inner))
    await store.kv.put(URL, NOT_A_RECORD, collection=COLLECTION)
    return inner, store


@pytest.mark.timeout(60)  # a deadlock ends here; generous for a busy machine
@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
async def test_a_login_written_while_setting_aside_survives(
    wrap: Callable[[AsyncKeyValue], AsyncKeyValue],
) -> None:
    inner, store = await unreadable_store(wrap)

    async def writer() -> None:
        await inner.aside_started.wait()  # the reader is putting the aside copy
        await store.put(ServerRecord(resource=URL))
        inner.release.set()

    found, _ = await asyncio.gather(store.get(URL), writer())
    assert found is None  # what the reader read was not a record
    assert inner.aside_puts == 1
    assert await store.get(URL) == ServerRecord(resource=URL)  # the login was not deleted


@pytest.mark.timeout(60)  # a deadlock ends here; generous for a busy machine
@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
async def test_without_a_writer_the_value_is_moved_aside(
    wrap: Callable[[AsyncKeyValue], AsyncKeyValue],
) -> None:
    inner, store = await unreadable_store(wrap)
    inner.release.set()
    assert await store.get(URL) is None
    assert inner.aside_puts == 1
    assert await store.kv.get(URL, collection=COLLECTION) is None  # moved, not left
    await store.put(ServerRecord(resource=URL))
    assert await store.get(URL) == ServerRecord(resource=URL)
