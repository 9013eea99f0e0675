"""``EncryptedKeyValue``: a user's own py-key-value-aio store, encrypted like ours.

What is proved: ``TokenStore(EncryptedKeyValue(kv, key=...))`` over py-key-value-aio's
``MemoryStore``, and over its ``RedisStore`` against a real redis-server, round-trips records,
and what the store underneath holds (every collection, key and value) contains no token, no
client secret and no server URL; a process with another key is refused; a value that is not a
record is moved aside in the store underneath, never deleted; the module does not import
redis; and ``TokenStore(kv)`` alone does keep tokens in clear (why the wrapper exists).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from key_value.aio.stores.memory import MemoryStore

from mcp_client_auth import EncryptedKeyValue, StorageError, TokenStore
from mcp_client_auth.store.names import COLLECTION
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

KEY = Fernet.generate_key().decode()
URL = "https://private-server.example.com/mcp"
ISSUER = "https://private-auth.example.com"
SECRETS = ("access-token-4f1c9e", "refresh-token-8b2d7a", "client-secret-6e3f0c")


def record() -> ServerRecord:
    return ServerRecord(
        resource=URL,
        issuer=ISSUER,
        client=ClientRegistration("client-1", client_secret=SECRETS[2]),
        tokens=TokenSet(SECRETS[0], refresh_token=SECRETS[1], expires_at=2e9),
    )


async def memory_dump(kv: MemoryStore) -> str:
    """Every collection, key and value the memory store holds, as one text."""
    parts: list[str] = []
    for collection in await kv.collections():
        for key in await kv.keys(collection=collection):
            value = await kv.get(key, collection=collection)
            parts.append(f"{collection} {key} {json.dumps(value)}")
    return "\n".join(parts)


def assert_nothing_in_clear(text: str) -> None:
    assert text, "the store underneath holds nothing?"
    for secret in (*SECRETS, URL, "private-server", ISSUER):
        assert secret not in text


async def test_over_a_memory_store_nothing_is_in_clear_and_records_round_trip() -> None:
    inner = MemoryStore()
    store = TokenStore(EncryptedKeyValue(inner, key=KEY))
    await store.put(record())
    assert_nothing_in_clear(await memory_dump(inner))
    assert await store.get(URL) == record()
    assert await store.records() == [record()]
    assert await store.resources() == [URL]
    assert store.protection.kind == "application"
    assert "MemoryStore" in store.description
    assert await store.delete(URL)
    assert await store.get(URL) is None


async def test_without_the_wrapper_the_tokens_are_in_clear() -> None:
    inner = MemoryStore()
    await TokenStore(inner).put(record())
    assert SECRETS[0] in await memory_dump(inner)  # what EncryptedKeyValue is for


async def test_another_key_is_refused_and_the_same_key_shares() -> None:
    inner = MemoryStore()
    await TokenStore(EncryptedKeyValue(inner, key=KEY)).put(record())
    assert await TokenStore(EncryptedKeyValue(inner, key=KEY)).get(URL) == record()
    other = TokenStore(EncryptedKeyValue(inner, key=Fernet.generate_key()))
    with pytest.raises(StorageError, match="not the key its entries were written with"):
        await other.get(URL)
    rotated = TokenStore(EncryptedKeyValue(inner, key=f"{Fernet.generate_key().decode()},{KEY}"))
    assert await rotated.get(URL) == record()  # an older key still decrypts


@pytest.mark.parametrize("bad", [b"short", "not base64 !", [bytes(31)]])
def test_a_bad_key_is_refused_without_echoing_it(bad: Any) -> None:
    with pytest.raises(StorageError) as caught:
        EncryptedKeyValue(MemoryStore(), key=bad)
    assert "not base64 !" not in str(caught.value)


async def test_a_value_that_is_not_a_record_is_moved_aside_not_lost() -> None:
    inner = MemoryStore()
    kv = EncryptedKeyValue(inner, key=KEY)
    store = TokenStore(kv)
    await store.put(record())
    odd = "https://odd.example.com/mcp"
    await kv.put(odd, {"resource": odd, "tokens": {"refresh_token": "r"}}, collection=COLLECTION)
    hashed = kv.collection_name(COLLECTION)
    name = kv.entry_name(odd, COLLECTION)
    stored = await inner.get(name, collection=hashed)
    assert await store.records() == [record()]
    assert kv.unreadable_seen == 1
    assert await inner.get(name, collection=hashed) is None
    [aside] = [n for n in await inner.keys(collection=hashed) if n.startswith(name)]
    assert aside.startswith(name + ".unreadable-")
    assert await inner.get(aside, collection=hashed) == stored  # the same bytes, kept
    await store.put(ServerRecord(odd))  # the new login does not touch it
    assert await inner.get(aside, collection=hashed) == stored


def test_the_module_does_not_import_redis() -> None:
    code = (
        "import sys; from mcp_client_auth import EncryptedKeyValue; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- py-key-value-aio's RedisStore, against a real redis-server --------------------------------


@pytest.fixture
async def redis_kv(redis_url: str) -> AsyncIterator[Any]:
    from key_value.aio.stores.redis import RedisStore

    store = RedisStore(url=redis_url)
    yield store
    await store.close()


def redis_dump(url: str) -> str:
    """Every Redis key and value of the server, read with redis-py."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return "\n".join(f"{name} {client.get(name)}" for name in client.scan_iter())
    finally:
        client.close()


async def test_over_py_key_value_redis_store_nothing_is_in_clear(
    redis_kv: Any, redis_url: str
) -> None:
    store = TokenStore(EncryptedKeyValue(redis_kv, key=KEY))
    await store.put(record())
    assert_nothing_in_clear(redis_dump(redis_url))
    assert await store.get(URL) == record()
    assert await store.records() == [record()]
    again = TokenStore(EncryptedKeyValue(redis_kv, key=KEY))  # another process, same key
    assert await again.get(URL) == record()
    with pytest.raises(StorageError, match="not the key its entries were written with"):
        await TokenStore(EncryptedKeyValue(redis_kv, key=Fernet.generate_key())).get(URL)


# --- finishing a key rotation ----------------------------------------------------------------


async def test_rotate_moves_every_entry_to_the_newest_key_so_the_old_one_can_be_dropped() -> None:
    inner = MemoryStore()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = EncryptedKeyValue(inner, key=old)
    others = [ServerRecord(f"https://server-{i}.example.com/mcp") for i in range(3)]
    for rec in (record(), *others):
        await TokenStore(before).put(rec)
    await before.put("plain", {"x": 1})  # the wrapper's own default collection
    await before.put("brief", {"x": 2}, ttl=3600)
    both = EncryptedKeyValue(inner, key=f"{new},{old}")
    await TokenStore(both).put(others[0])  # already under the newest key: not moved again

    assert await both.rotate() == 5
    assert await both.rotate() == 0  # idempotent

    after = EncryptedKeyValue(inner, key=new)
    store = TokenStore(after)
    assert sorted(await store.records(), key=lambda r: r.resource) == sorted(
        [record(), *others], key=lambda r: r.resource
    )
    assert await after.get("plain") == {"x": 1}
    value, ttl = await after.ttl("brief")
    assert value == {"x": 2}
    assert ttl is not None
    assert 0 < ttl <= 3600
    for collection in ("default", COLLECTION):  # nothing left under the old key's names
        assert await inner.keys(collection=before.collection_name(collection)) == []
    assert after.unreadable_seen == 0
    with pytest.raises(StorageError, match="not the key its entries were written with"):
        await TokenStore(EncryptedKeyValue(inner, key=old)).get(URL)  # the marker moved on
    assert_nothing_in_clear(await memory_dump(inner))


async def test_rotate_only_the_named_collections() -> None:
    inner = MemoryStore()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = EncryptedKeyValue(inner, key=old)
    await before.put("a", {"x": 1}, collection="one")
    await before.put("b", {"x": 2}, collection="two")
    both = EncryptedKeyValue(inner, key=f"{new},{old}")
    assert await both.rotate(["one"]) == 1
    after = EncryptedKeyValue(inner, key=new)
    assert await after.get("a", collection="one") == {"x": 1}
    assert await after.get("b", collection="two") is None  # not named: still under the old key
    assert await both.get("b", collection="two") == {"x": 2}
