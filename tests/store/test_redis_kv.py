"""RedisKeyValue, the plain key-value layer under TokenStore.redis(), against a REAL redis-server.

The server is the ``redis_server`` fixture's (tests/store/conftest.py), emptied for each test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from cryptography.fernet import Fernet

from mcp_client_auth.store import TokenStore
from mcp_client_auth.store.names import COLLECTION
from mcp_client_auth.store.redis_kv import RedisKeyValue
from mcp_client_auth.store.redis_store import EncryptedKeyValue
from mcp_client_auth.tokens import ServerRecord

URL = "https://mcp.example.com/mcp"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    made = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()


@pytest.fixture
def kv(client: redis.asyncio.Redis) -> RedisKeyValue:
    return RedisKeyValue(client)


async def test_round_trip_and_layout(kv: RedisKeyValue, client: redis.asyncio.Redis) -> None:
    assert await kv.get("k", collection="c") is None
    await kv.put("k", {"fernet": "token", "n": [1, "two"]}, collection="c")
    assert await kv.get("k", collection="c") == {"fernet": "token", "n": [1, "two"]}
    assert await client.keys("*") == ["c::k"]  # one Redis string per entry
    document = await client.get("c::k")
    assert isinstance(document, str)
    assert json.loads(document) == {
        "version": 1,
        "value": {"fernet": "token", "n": [1, "two"]},
    }
    assert await client.pttl("c::k") == -1  # no time to live unless asked
    await kv.put("k", {"v": 2}, collection="c")  # overwrites
    assert await kv.get("k", collection="c") == {"v": 2}
    with pytest.raises(TypeError, match="mappings"):
        await kv.put("k", ["not", "a", "mapping"], collection="c")  # type: ignore[arg-type]


async def test_ttl_is_redis_own(kv: RedisKeyValue, client: redis.asyncio.Redis) -> None:
    await kv.put("forever", {"v": 0}, collection="c")
    assert await kv.ttl("forever", collection="c") == ({"v": 0}, None)
    await kv.put("t", {"v": 1}, collection="c", ttl=100)
    value, ttl = await kv.ttl("t", collection="c")
    assert value == {"v": 1} and ttl is not None and 90 < ttl <= 100
    assert 90_000 < await client.pttl("c::t") <= 100_000  # SET ... PX: Redis expires it
    await kv.put("t", {"v": 2}, collection="c")  # rewritten without ttl: kept for good
    assert await kv.ttl("t", collection="c") == ({"v": 2}, None)
    assert await kv.ttl("missing", collection="c") == (None, None)
    for bad in (0, -1, True, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive number of seconds"):
            await kv.put("t", {"v": 3}, collection="c", ttl=bad)
    assert await kv.get("t", collection="c") == {"v": 2}  # a refused put writes nothing


async def test_an_entry_expires_after_its_ttl(kv: RedisKeyValue) -> None:
    await kv.put("short", {"v": 1}, collection="c", ttl=1)
    await kv.put("sub-second", {"v": 2}, collection="c", ttl=0.0001)  # 1 ms at least
    deadline = time.monotonic() + 15
    while await kv.get("short", collection="c") is not None:
        assert time.monotonic() < deadline, "an entry with a 1 s ttl outlived 15 s"
        await asyncio.sleep(0.05)
    assert await kv.get("sub-second", collection="c") is None
    assert await kv.ttl("short", collection="c") == (None, None)
    assert await kv.keys("c") == []


async def test_keys_scan_every_page(kv: RedisKeyValue, client: redis.asyncio.Redis) -> None:
    names = [f"key-{i}" for i in range(1500)]
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(f"c::{name}", json.dumps({"version": 1, "value": {"n": name}}))
        await pipe.execute()
    await kv.put("elsewhere", {}, collection="other")
    calls = 0
    scan = client.scan

    async def counting_scan(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        assert kwargs["match"] == "c::*"  # SCAN with the collection's pattern, never KEYS
        return await scan(*args, **kwargs)

    client.scan = counting_scan  # type: ignore[method-assign]
    small = RedisKeyValue(client, scan_count=10)
    assert sorted(await small.keys("c")) == sorted(names)
    assert calls > 10  # many pages
    calls = 0
    assert len(await small.keys("c", limit=25)) == 25
    assert calls < 10  # stops once it has enough
    assert await small.keys("c", limit=0) == []
    with pytest.raises(ValueError, match="scan_count"):
        RedisKeyValue(client, scan_count=0)


async def test_get_many_is_one_mget(kv: RedisKeyValue, client: redis.asyncio.Redis) -> None:
    await kv.put("a", {"v": "a"}, collection="c")
    await kv.put("c", {"v": "c"}, collection="c")
    await kv.put("b", {"v": "b"}, collection="other")  # another collection's b
    before = (await client.info("commandstats")).get("cmdstat_mget", {}).get("calls", 0)
    got = await kv.get_many(["a", "b", "c", "missing"], collection="c")
    assert got == [{"v": "a"}, None, {"v": "c"}, None]
    after = (await client.info("commandstats")).get("cmdstat_mget", {}).get("calls", 0)
    assert after - before == 1
    assert await kv.get_many([], collection="c") == []


async def test_delete_says_whether_it_deleted(kv: RedisKeyValue) -> None:
    await kv.put("k", {"v": 1}, collection="c")
    assert await kv.delete("k", collection="other") is False
    assert await kv.delete("k", collection="c") is True
    assert await kv.delete("k", collection="c") is False
    assert await kv.get("k", collection="c") is None


async def test_collections_are_isolated(kv: RedisKeyValue, client: redis.asyncio.Redis) -> None:
    for collection in ("a", "ab", "a*", "a?", "[a]", "x:y"):
        await kv.put("k", {"in": collection}, collection=collection)
    await kv.put("only-in-ab", {}, collection="ab")
    for collection in ("a", "a*", "a?", "[a]", "x:y"):
        assert await kv.keys(collection) == ["k"], collection  # glob characters taken literally
        assert await kv.get("k", collection=collection) == {"in": collection}
    assert sorted(await kv.keys("ab")) == ["k", "only-in-ab"]
    assert await kv.keys("x") == []
    assert await kv.get("only-in-ab", collection="a") is None
    await kv.delete("k", collection="a")
    assert await kv.get("k", collection="ab") == {"in": "ab"}


@pytest.mark.parametrize(
    "raw", ["not json {", '"a string"', '{"no": "value"}', '{"version": 1, "value": [1]}']
)
async def test_a_value_not_of_the_layout_reads_as_absent(
    kv: RedisKeyValue,
    client: redis.asyncio.Redis,
    caplog: pytest.LogCaptureFixture,
    raw: str,
) -> None:
    await client.set("c::bad", raw)
    await kv.put("good", {"v": 1}, collection="c")
    with caplog.at_level(logging.WARNING, "mcp_client_auth.store"):
        assert await kv.get("bad", collection="c") is None
        assert await kv.ttl("bad", collection="c") == (None, None)
        assert await kv.get_many(["bad", "good"], collection="c") == [None, {"v": 1}]
    assert caplog.text.count("ignoring the Redis key c::bad") == 3
    assert sorted(await kv.keys("c")) == ["bad", "good"]  # listed: the name is there
    await kv.put("bad", {"v": 2}, collection="c")  # and a write replaces it
    assert await kv.get("bad", collection="c") == {"v": 2}


async def test_the_encrypted_layer_treats_a_non_json_entry_as_absent(
    redis_url: str, client: redis.asyncio.Redis
) -> None:
    store = TokenStore.redis(redis_url, key=Fernet.generate_key().decode())
    try:
        await store.put(ServerRecord(URL, issuer="https://auth.example.com"))
        kv = store.kv
        assert isinstance(kv, EncryptedKeyValue)
        name = f"{kv.collection_name(COLLECTION)}::{kv.entry_name(URL, COLLECTION)}"
        await client.set(name, "\x00 not json")
        assert await store.get(URL) is None
        assert await store.resources() == []
        await store.put(ServerRecord(URL, issuer="https://new.example.com"))  # a new login
        got = await store.get(URL)
        assert got is not None and got.issuer == "https://new.example.com"
    finally:
        await store.aclose()


async def test_a_bytes_client_works_too(redis_url: str) -> None:
    raw_client = redis.asyncio.Redis.from_url(redis_url)  # decode_responses=False
    try:
        kv = RedisKeyValue(raw_client)
        await kv.put("k", {"v": "é"}, collection="c", ttl=60)
        assert await kv.get("k", collection="c") == {"v": "é"}
        assert await kv.get_many(["k"], collection="c") == [{"v": "é"}]
        assert await kv.keys("c") == ["k"]
    finally:
        await raw_client.aclose()


async def test_shares_entries_with_py_key_value_redis_store(
    kv: RedisKeyValue, client: redis.asyncio.Redis
) -> None:
    """Hosts on the release that used py-key-value-aio's RedisStore and hosts on this one share
    a store during an upgrade: each reads what the other wrote."""
    from key_value.aio.stores.redis import RedisStore

    old = RedisStore(client=client)
    await old.put("from-old", {"fernet": "a"}, collection="c", ttl=100)
    await old.put("forever", {"fernet": "b"}, collection="c")
    value, ttl = await kv.ttl("from-old", collection="c")
    assert value == {"fernet": "a"} and ttl is not None and 90 < ttl <= 100
    assert await kv.get("forever", collection="c") == {"fernet": "b"}
    await kv.put("from-new", {"fernet": "c"}, collection="c", ttl=100)
    assert await old.get("from-new", collection="c") == {"fernet": "c"}
    assert sorted(await old.keys(collection="c")) == sorted(await kv.keys("c"))


async def test_move_if_unchanged_renames_with_bytes_and_ttl(kv: RedisKeyValue) -> None:
    await kv.put("k", {"a": 1}, collection="c", ttl=100)
    assert await kv.move_if_unchanged("k", "k-aside", collection="c", expected={"a": 1})
    assert await kv.get("k", collection="c") is None
    value, ttl = await kv.ttl("k-aside", collection="c")
    assert value == {"a": 1} and ttl is not None and 0 < ttl <= 100


async def test_move_if_unchanged_leaves_a_replaced_entry(kv: RedisKeyValue) -> None:
    await kv.put("k", {"a": 2}, collection="c")  # a writer replaced what the reader saw
    assert not await kv.move_if_unchanged("k", "k-aside", collection="c", expected={"a": 1})
    assert await kv.get("k", collection="c") == {"a": 2}
    assert await kv.get("k-aside", collection="c") is None
    assert not await kv.move_if_unchanged("gone", "x", collection="c", expected={"a": 1})
