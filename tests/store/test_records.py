"""TokenStore.records(): every record in one pass, on the disk, memory and Redis stores.

What is proved: ``records()`` gives what ``resources()`` then ``get()`` give (sorted, the same
records), reading and decrypting each entry once; an entry that cannot be read (corrupt, written
under another key, holding another entry than its name says) is left out and set aside as
``get()`` sets it aside, and counted where ``status`` and ``doctor`` count it; a decryptable
value that is not a record is set aside the same way (moved, never deleted, so the next login
cannot overwrite it); expired entries are left out;
after a key rotation the newest copy of an entry wins. The Redis tests use a real redis-server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import RecordRead, TokenStore
from mcp_client_auth.store.codec import Codec
from mcp_client_auth.store.disk import EncryptedFileStore
from mcp_client_auth.store.names import COLLECTION
from mcp_client_auth.store.redis_store import EncryptedKeyValue
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
COUNT = 6


def server(i: int) -> str:
    return f"https://server-{i}.example.com/mcp"


def record(i: int, *, expires_at: float = 2e9) -> ServerRecord:
    return ServerRecord(
        resource=server(i),
        issuer=f"https://auth-{i}.example.com",
        client=ClientRegistration(f"client-{i}"),
        tokens=TokenSet(f"access-{i}", refresh_token=f"refresh-{i}", expires_at=expires_at),
    )


async def fill(store: TokenStore, count: int = COUNT) -> list[ServerRecord]:
    records = [record(i) for i in reversed(range(count))]  # stored out of order
    for rec in records:
        await store.put(rec)
    return sorted(records, key=lambda r: r.resource)


async def by_get(store: TokenStore) -> list[ServerRecord]:
    """The two-pass way ``status`` used to take: list, then read each entry."""
    found = [await store.get(resource) for resource in await store.resources()]
    return [r for r in found if r is not None]


class CountingCodec(Codec):
    """Counts the decryptions made with a store's keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        super().__init__(keys)
        self.decrypted = 0

    def decrypt(self, token: bytes, *, value: bool = True) -> dict[str, Any]:
        self.decrypted += 1
        return super().decrypt(token, value=value)


def count_decryptions(kv: EncryptedKeyValue) -> CountingCodec:
    counter = CountingCodec(kv.codec.keys)
    kv.codec = counter
    return counter


# --- the disk store ----------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> TokenStore:
    return TokenStore(EncryptedFileStore(tmp_path / "store", [KEY_A]))


def files_of(store: TokenStore) -> EncryptedFileStore:
    kv = store.kv
    assert isinstance(kv, EncryptedFileStore)
    return kv


async def test_disk_records_are_what_list_then_get_gives(disk: TokenStore) -> None:
    expected = await fill(disk)
    counter = count_decryptions(files_of(disk))
    records = await disk.records()
    assert counter.decrypted == COUNT  # one decryption per entry
    assert records == expected
    assert [r.resource for r in records] == await disk.resources()
    assert [r.issuer for r in records] == [f"https://auth-{i}.example.com" for i in range(COUNT)]
    assert await by_get(disk) == records


async def test_disk_unreadable_entries_are_left_out_and_set_aside(
    disk: TokenStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = await fill(disk)
    folder = files_of(disk).folder(COLLECTION)
    corrupt = folder / ("a" * 40)
    corrupt.write_bytes(b"not a Fernet token")
    # a well-formed entry, but written under another store key
    other = EncryptedFileStore(tmp_path / "other", [KEY_B])
    await other.put(server(99), record(99).to_dict(), collection=COLLECTION)
    [foreign] = [p for p in other.folder(COLLECTION).iterdir()]
    stranger = folder / ("b" * 40)
    stranger.write_bytes(foreign.read_bytes())

    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        records = await disk.records()
    assert records == expected
    assert disk.unreadable == 2  # what `doctor` reports as unreadable
    aside = disk.unreadable_files()
    assert sorted(p.name.split(".unreadable-")[0] for p in aside) == ["a" * 40, "b" * 40]
    assert sorted(p.read_bytes() for p in aside) == sorted(
        [b"not a Fernet token", foreign.read_bytes()]
    )  # moved, never deleted
    assert not corrupt.exists() and not stranger.exists()
    assert str(corrupt) in caplog.text and str(stranger) in caplog.text
    assert "cannot be decrypted" in caplog.text
    assert await disk.records() == expected  # the next pass finds nothing more to set aside
    assert disk.unreadable == 2


async def test_disk_an_entry_under_another_entrys_name_is_set_aside(disk: TokenStore) -> None:
    await fill(disk, 2)
    kv = files_of(disk)
    first, second = kv.path(server(0), COLLECTION), kv.path(server(1), COLLECTION)
    second.write_bytes(first.read_bytes())  # two copies of server 0, one of them misnamed
    assert await disk.records() == [record(0)]
    assert disk.unreadable == 1
    assert await disk.get(server(1)) is None  # what get() finds there too


async def test_disk_a_value_that_is_not_a_record_is_set_aside(
    disk: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    expected = await fill(disk, 2)
    odd = "https://odd.example.com/mcp"
    await disk.kv.put(odd, {"no": "resource"}, collection=COLLECTION)
    entry = files_of(disk).path(odd, COLLECTION)
    content = entry.read_bytes()
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        assert await disk.records() == expected
    assert "it is not a record this version can read" in caplog.text
    assert disk.unreadable == 1  # what `doctor` reports as unreadable
    [aside] = disk.unreadable_files()
    assert aside.name.startswith(entry.name + ".unreadable-")
    assert aside.read_bytes() == content  # moved, byte for byte: nothing is lost
    assert odd not in await disk.resources()
    await disk.put(ServerRecord(odd, issuer="https://auth.example.com"))  # the new login
    assert aside.read_bytes() == content  # ...does not overwrite what was set aside


async def test_disk_get_sets_aside_a_value_that_is_not_a_record(disk: TokenStore) -> None:
    odd = "https://odd.example.com/mcp"
    value = {"resource": odd, "tokens": {"refresh_token": "r"}}  # no access_token
    await disk.kv.put(odd, value, collection=COLLECTION)
    assert await disk.get(odd) is None
    assert disk.unreadable == 1
    assert await disk.kv.get(odd, collection=COLLECTION) is None


async def test_disk_expired_entries_are_left_out(disk: TokenStore) -> None:
    await fill(disk, 2)
    await disk.kv.put(server(7), record(7).to_dict(), collection=COLLECTION, ttl=-1)
    assert [r.resource for r in await disk.records()] == [server(0), server(1)]


async def test_disk_after_rotation_the_newest_copy_wins(tmp_path: Path) -> None:
    old = TokenStore(EncryptedFileStore(tmp_path, [KEY_A]))
    await fill(old, 3)
    rotated = TokenStore(EncryptedFileStore(tmp_path, [KEY_B, KEY_A]))
    newer = ServerRecord(server(1), issuer="https://moved.example.com")
    await rotated.put(newer)  # under the new key's name; the old name removed
    stale = EncryptedFileStore(tmp_path, [KEY_A], check_marker=False)
    await stale.put(server(1), record(1).to_dict(), collection=COLLECTION)  # an old copy back
    records = await rotated.records()
    assert records == [record(0), newer, record(2)]
    assert records == await by_get(rotated)


async def test_disk_records_of_an_empty_or_missing_store(tmp_path: Path) -> None:
    assert await TokenStore(EncryptedFileStore(tmp_path / "none", [KEY_A])).records() == []


# --- the memory store and other key-value stores -------------------------------------------------


async def test_memory_records(caplog: pytest.LogCaptureFixture) -> None:
    store = TokenStore.memory()
    assert await store.records() == []
    expected = await fill(store)
    await store.kv.put("https://odd.example.com/mcp", {"tokens": "x"}, collection=COLLECTION)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        records = await store.records()
    assert records == expected
    assert [r.issuer for r in records] == [f"https://auth-{i}.example.com" for i in range(COUNT)]
    assert "ignoring the unreadable stored record for https://odd.example.com/mcp" in caplog.text
    assert await store.kv.get("https://odd.example.com/mcp", collection=COLLECTION) is None
    aside = COLLECTION + ".unreadable"
    [name] = await store.kv.keys(collection=aside)  # type: ignore[attr-defined]
    assert name.startswith("https://odd.example.com/mcp.unreadable-")
    assert await store.kv.get(name, collection=aside) == {"tokens": "x"}  # kept, not lost
    assert await store.delete(server(2))
    assert [r.resource for r in await store.records()] == [
        server(i) for i in range(COUNT) if i != 2
    ]


async def test_a_store_that_cannot_list() -> None:
    class NoListing:
        async def get(self, key: str, *, collection: str | None = None) -> None:
            return None

    store = TokenStore(NoListing())  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="cannot list its entries"):
        await store.records()


async def test_a_failing_store_is_a_storage_error() -> None:
    class Broken:
        async def keys(self, collection: str | None = None) -> list[str]:
            raise ConnectionError("the disk went away")

    store = TokenStore(Broken(), description="a broken store")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match=r"\(a broken store\): the disk went away"):
        await store.records()


# --- Redis --------------------------------------------------------------------------------------

REDIS_KEY = Fernet.generate_key().decode()
OTHER_REDIS_KEY = Fernet.generate_key().decode()


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[TokenStore]:
    store = TokenStore.redis(redis_url, key=REDIS_KEY)
    yield store
    await store.aclose()


async def test_redis_records(redis_store: TokenStore, caplog: pytest.LogCaptureFixture) -> None:
    expected = await fill(redis_store)
    kv = redis_store.kv
    assert isinstance(kv, EncryptedKeyValue)
    collection = kv.collection_name(COLLECTION)
    raw = kv.connections.kv
    await raw.put("c" * 40, {"fernet": "gAAAAA-not-a-token"}, collection=collection)
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"collection":"x","key":"y"}\n{}')
    await raw.put("d" * 40, {"fernet": foreign.decode()}, collection=collection)

    counter = count_decryptions(kv)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        records = await redis_store.records()
    assert records == expected
    assert [r.issuer for r in records] == [f"https://auth-{i}.example.com" for i in range(COUNT)]
    assert counter.decrypted == COUNT + 2  # each entry once, the two unreadable ones included
    assert kv.unreadable_seen == 2
    assert caplog.text.count("cannot be decrypted") == 2
    names = await raw.keys(collection=collection)
    assert sorted(n.split(".unreadable-")[0] for n in names if ".unreadable-" in n) == [
        "c" * 40,
        "d" * 40,
    ]  # renamed, never deleted
    assert await redis_store.records() == expected
    assert kv.unreadable_seen == 2
    assert await by_get(redis_store) == expected


async def test_redis_an_entry_under_another_entrys_name_is_set_aside(
    redis_store: TokenStore,
) -> None:
    await fill(redis_store, 2)
    kv = redis_store.kv
    assert isinstance(kv, EncryptedKeyValue)
    collection, raw = kv.collection_name(COLLECTION), kv.connections.kv
    first = await raw.get(kv.entry_name(server(0), COLLECTION), collection=collection)
    assert first is not None
    await raw.put(kv.entry_name(server(1), COLLECTION), first, collection=collection)
    assert await redis_store.records() == [record(0)]
    assert kv.unreadable_seen == 1
    assert await redis_store.get(server(1)) is None  # what get() finds there too


async def test_redis_a_value_that_is_not_a_record_is_renamed_not_lost(
    redis_store: TokenStore,
) -> None:
    expected = await fill(redis_store, 2)
    kv = redis_store.kv
    assert isinstance(kv, EncryptedKeyValue)
    odd = "https://odd.example.com/mcp"
    await kv.put(odd, {"resource": odd, "tokens": {"refresh_token": "r"}}, collection=COLLECTION)
    collection, raw = kv.collection_name(COLLECTION), kv.connections.kv
    name = kv.entry_name(odd, COLLECTION)
    stored = await raw.get(name, collection=collection)
    assert await redis_store.records() == expected
    assert kv.unreadable_seen == 1
    [aside] = [n for n in await raw.keys(collection=collection) if n.startswith(name + ".")]
    assert await raw.get(aside, collection=collection) == stored  # renamed, never deleted
    await redis_store.put(ServerRecord(odd))  # the new login
    assert await raw.get(aside, collection=collection) == stored


async def test_redis_records_after_rotation(redis_url: str) -> None:
    old = TokenStore.redis(redis_url, key=REDIS_KEY)
    rotated = TokenStore.redis(redis_url, key=f"{OTHER_REDIS_KEY},{REDIS_KEY}")
    try:
        await fill(old, 3)
        newer = ServerRecord(server(1), issuer="https://moved.example.com")
        await rotated.put(newer)
        records = await rotated.records()
        assert records == [record(0), newer, record(2)]
        assert records == await by_get(rotated)
    finally:
        await old.aclose()
        await rotated.aclose()


async def test_redis_rotate_then_the_new_key_alone_reads_every_record(redis_url: str) -> None:
    old = TokenStore.redis(redis_url, key=REDIS_KEY)
    rotated = TokenStore.redis(redis_url, key=f"{OTHER_REDIS_KEY},{REDIS_KEY}")
    new = TokenStore.redis(redis_url, key=OTHER_REDIS_KEY)
    try:
        expected = await fill(old, 3)
        assert await rotated.kv.rotate() == 3  # type: ignore[attr-defined]
        assert await rotated.kv.rotate() == 0  # type: ignore[attr-defined]
        assert await new.records() == expected
        assert await by_get(new) == expected
    finally:
        await old.aclose()
        await rotated.aclose()
        await new.aclose()


async def test_read_reports_an_entry_set_aside_instead_of_logging_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``read`` answers where an unreadable entry went and why; ``get`` logs it as before."""
    store = TokenStore(EncryptedFileStore(tmp_path, [KEY_A]))
    await store.put(record(1))
    assert await store.read(server(1)) == RecordRead(record(1))
    [path] = [p for p in (tmp_path / "entries").rglob("*") if p.is_file()]
    path.write_bytes(b"not a Fernet token")
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        found = await store.read(server(1))
    assert found.record is None
    assert found.set_aside is not None
    assert found.set_aside.entry == f"token store entry {path}"
    assert found.set_aside.why == "it cannot be decrypted with this store's key"
    assert (path.parent / found.set_aside.moved_to).is_file()
    assert caplog.text == ""  # told to the caller, not logged
    assert await store.read(server(1)) == RecordRead(None)  # nothing left to set aside


async def test_read_reports_a_value_that_is_no_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore(EncryptedFileStore(tmp_path, [KEY_A]))
    await store.kv.put(server(2), {"resource": 42}, collection=COLLECTION)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        found = await store.read(server(2))
        assert caplog.text == ""
        await store.kv.put(server(2), {"resource": 42}, collection=COLLECTION)
        assert await store.get(server(2)) is None
    assert found.record is None and found.set_aside is not None
    assert found.set_aside.why.startswith("it is not a record this version can read")
    assert "moved it to" in caplog.text  # get() still logs it
    assert [p.name for p in store.unreadable_files()] != []


async def test_read_over_a_plain_key_value_store_reports_the_copy() -> None:
    store = TokenStore.memory()
    await store.kv.put(server(3), {"resource": 42}, collection=COLLECTION)
    found = await store.read(server(3))
    assert found.record is None and found.set_aside is not None
    assert found.set_aside.entry == f"stored record for {server(3)}"
    assert found.set_aside.moved_to.endswith(f"in the collection {COLLECTION}.unreadable")


async def test_redis_read_reports_an_entry_it_cannot_decrypt(
    redis_store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    await redis_store.put(record(1))
    kv = redis_store.kv
    assert isinstance(kv, EncryptedKeyValue)
    collection, raw = kv.collection_name(COLLECTION), kv.connections.kv
    name = kv.entry_name(server(1), COLLECTION)
    await raw.put(name, {"fernet": "not a Fernet token"}, collection=collection)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        found = await redis_store.read(server(1))
    assert caplog.text == ""
    assert found.record is None and found.set_aside is not None
    assert found.set_aside.entry == f"token store entry {collection}::{name} in {kv.where}"
    assert found.set_aside.why == "it cannot be decrypted with this store's key"
    moved = await raw.get(found.set_aside.moved_to, collection=collection)
    assert moved == {"fernet": "not a Fernet token"}  # renamed, never deleted
