"""TokenStore.redis(): encrypted records and the cross-host lock, against a REAL redis-server.

The server is started by the ``redis_server`` fixture (tests/store/conftest.py) on 127.0.0.1;
without Debian's ``redis-server`` these tests fail, saying what to install.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import TokenStore, keys
from mcp_client_auth.store.codec import parse_keys
from mcp_client_auth.store.redis_store import EncryptedKeyValue, RedisLocks, redact_url
from mcp_client_auth.store.token_store import COLLECTION
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

from .conftest import SecretService
from .redis_server import start_redis_server

URL = "https://mcp.example.com/mcp"
SECRETS = ("access-token-SECRET-1", "refresh-token-SECRET-2", "client-secret-SECRET-3")
KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()

MakeStore = Callable[..., TokenStore]


def record(resource: str = URL, n: int = 0) -> ServerRecord:
    return ServerRecord(
        resource=resource,
        issuer="https://auth.example.com",
        client=ClientRegistration("client-1", client_secret=SECRETS[2]),
        tokens=TokenSet(SECRETS[0], refresh_token=SECRETS[1], expires_at=2e9),
        extra={"n": n},
    )


@pytest.fixture
async def make_store(redis_url: str) -> AsyncIterator[MakeStore]:
    """``TokenStore.redis(redis_url, key=KEY, ...)``, closed after the test."""
    made: list[TokenStore] = []

    def make(url: str = redis_url, **kwargs: Any) -> TokenStore:
        kwargs.setdefault("key", KEY)
        store = TokenStore.redis(url, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


def raw_items(url: str) -> dict[bytes, bytes]:
    """Every key in Redis and its raw value (strings only), read with plain redis-py."""
    client = redis.Redis.from_url(url)  # bytes in, bytes out
    try:
        items: dict[bytes, bytes] = {}
        for name in client.scan_iter("*"):
            value = client.get(name)
            items[name] = value if isinstance(value, bytes) else b""
        return items
    finally:
        client.close()


def kv_of(store: TokenStore) -> EncryptedKeyValue:
    assert isinstance(store.kv, EncryptedKeyValue)
    return store.kv


# --- records -------------------------------------------------------------------------------


async def test_round_trip_between_two_hosts(make_store: MakeStore) -> None:
    one, two = make_store(), make_store()  # two hosts: separate clients, same key
    assert await one.get(URL) is None
    await one.put(record(n=1))
    got = await two.get(URL)
    assert got == record(n=1)
    await two.put(record(n=2))
    await two.put(record("https://other.example.com/mcp"))
    assert await one.get(URL) == record(n=2)
    assert await one.resources() == ["https://mcp.example.com/mcp", "https://other.example.com/mcp"]
    assert await one.delete(URL) is True
    assert await two.get(URL) is None
    assert await two.delete(URL) is False
    assert await two.resources() == ["https://other.example.com/mcp"]


async def test_key_value_protocol(make_store: MakeStore) -> None:
    kv = kv_of(make_store())
    await kv.put_many(["x", "y"], [{"v": "x"}, {"v": "y"}], collection="c")
    assert await kv.get_many(["x", "y", "z"], collection="c") == [{"v": "x"}, {"v": "y"}, None]
    assert sorted(await kv.keys("c")) == ["x", "y"]
    assert len(await kv.keys("c", limit=1)) == 1
    assert await kv.keys("other") == []
    await kv.put("t", {"v": 1}, collection="c", ttl=100)
    value, ttl = await kv.ttl("t", collection="c")
    assert value == {"v": 1} and ttl is not None and 90 < ttl <= 100
    assert await kv.ttl_many(["x"], collection="c") == [({"v": "x"}, None)]
    assert await kv.delete_many(["x", "y", "z"], collection="c") == 2


async def test_nothing_in_clear_in_redis(make_store: MakeStore, redis_url: str) -> None:
    store = make_store()
    await store.put(record())
    await store.put(record("https://private-server.example.org/mcp"))
    async with store.lock(URL):
        items = raw_items(redis_url)  # while the lock key exists too
    assert len(items) == 4  # the marker, two entries, one lock
    blob = b"\n".join(k + b"\n" + v for k, v in items.items())
    for secret in (*SECRETS, "example", "private-server", "auth.example", "client-1"):
        assert secret.encode() not in blob, secret
    assert KEY.encode() not in blob
    assert sum(k.startswith(b"mcp-client-auth:lock:") for k in items) == 1
    assert b"mcp-client-auth:store" in items  # the marker: only a key id


async def test_a_host_with_another_key_is_refused(make_store: MakeStore) -> None:
    await make_store().put(record())
    other = make_store(key=OTHER_KEY)
    with pytest.raises(StorageError) as info:
        await other.get(URL)
    message = str(info.value)
    assert "not the key its entries were written with" in message
    assert "MCP_CLIENT_AUTH_KEY" in message and "key=" in message
    assert KEY not in message and OTHER_KEY not in message
    with pytest.raises(StorageError):
        await other.put(record(n=9))
    assert await make_store().get(URL) == record()  # nothing was harmed


async def test_key_rotation(make_store: MakeStore, redis_url: str) -> None:
    await make_store().put(record(n=1))
    rotated = make_store(key=f"{OTHER_KEY},{KEY}")  # new key first, old one still decrypts
    assert await rotated.get(URL) == record(n=1)
    before = set(raw_items(redis_url))
    await rotated.put(record(n=2))
    after = set(raw_items(redis_url))
    assert len(after) == len(before) and after != before  # rewritten under the new key's name
    assert await make_store(key=OTHER_KEY + "," + KEY).get(URL) == record(n=2)


async def test_unreadable_entry_is_set_aside(
    make_store: MakeStore, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    await store.put(record())
    kv = kv_of(store)
    collection, name = kv.collection_name(COLLECTION), kv.entry_name(URL, COLLECTION)
    await kv.connections.kv.put(name, {"fernet": "gAAAAA-not-a-token"}, collection=collection)
    with caplog.at_level(logging.WARNING, "mcp_client_auth.store"):
        assert await store.get(URL) is None
    assert "cannot be decrypted" in caplog.text and name in caplog.text
    assert "127.0.0.1" in caplog.text
    names = [k.decode() for k in raw_items(redis_url)]
    assert any(n.startswith(f"{collection}::{name}.unreadable-") for n in names)  # kept
    assert not any(n == f"{collection}::{name}" for n in names)
    assert await store.resources() == []
    await store.put(record(n=3))  # a new login writes a fresh entry
    assert await store.get(URL) == record(n=3)


def test_usable_from_one_event_loop_after_another(redis_url: str) -> None:
    """A CLI runs asyncio.run() again and again; the sync driver uses its own loop thread."""
    from mcp_client_auth._portal import run_sync

    store = TokenStore.redis(redis_url, key=KEY)
    for n in range(3):
        asyncio.run(store.put(record(n=n)))
        assert asyncio.run(store.get(URL)) == record(n=n)
    run_sync(store.put(record(n=7)))
    assert run_sync(store.get(URL)) == record(n=7)

    async def locked() -> None:
        async with store.lock(URL):
            pass
        await store.aclose()

    asyncio.run(locked())
    run_sync(locked())
    results: list[Any] = []

    async def get_and_close() -> ServerRecord | None:
        try:
            return await store.get(URL)
        finally:
            await store.aclose()

    thread = threading.Thread(target=lambda: results.append(asyncio.run(get_and_close())))
    thread.start()
    thread.join()
    assert results == [record(n=7)]


# --- the key and what is said about it --------------------------------------------------------


async def test_password_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    password = "hunter2-REDIS-PASSWORD"
    server = start_redis_server(tmp_path, password=password)
    try:
        store = TokenStore.redis(server.url, key=KEY)
        await store.put(record())
        assert await store.get(URL) == record()
        async with store.lock(URL):
            pass
        assert store.description == (
            f"Redis at redis://:***@127.0.0.1:{server.port}/0, encrypted; key from the "
            "application (key=)"
        )
        shown = [repr(store), str(store.protection), repr(store.kv), repr(store.lock(URL))]
        shown.append(repr(store.lock_factory))
        await store.aclose()

        wrong = TokenStore.redis(server.url.replace(password, "wrong-PASSWORD"), key=KEY)
        with pytest.raises(StorageError) as info:
            await wrong.get(URL)
        shown += [str(info.value), repr(wrong)]
        assert "127.0.0.1" in str(info.value)
        await wrong.aclose()
    finally:
        server.stop()
    with pytest.raises(StorageError) as unreachable:
        await TokenStore.redis(server.url, key=KEY).get(URL)  # the server is gone
    shown += [str(unreachable.value), caplog.text]
    for text in shown:
        assert password not in text and "wrong-PASSWORD" not in text, text


def test_redact_url() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:pw@host:1/2") == "redis://:***@host:1/2"
    assert redact_url("rediss://user:p%40w@host/0") == "rediss://user:***@host/0"
    assert redact_url("redis://user@host") == "redis://user@host"
    assert redact_url("unix:///run/redis.sock?db=1&password=pw") == (
        "unix:///run/redis.sock?db=1&password=***"
    )
    with pytest.raises(ValueError, match="not a Redis URL") as info:
        TokenStore.redis("http://:pw@host/0", key=KEY)
    assert "pw@" not in str(info.value)


def test_key_argument_forms(redis_url: str) -> None:
    raw = os.urandom(32)
    assert TokenStore.redis(redis_url, key=raw).protection.kind == "application"
    assert TokenStore.redis(redis_url, key=KEY.encode()).protection.kind == "application"
    with pytest.raises(StorageError, match="valid key") as info:
        TokenStore.redis(redis_url, key="not-a-key-SECRET")
    assert "SECRET" not in str(info.value)
    with pytest.raises(StorageError, match="require_keyring"):
        TokenStore.redis(redis_url, key=KEY, require_keyring=True)


async def test_key_from_the_environment_needs_no_redis_at_set_up(
    monkeypatch: pytest.MonkeyPatch, redis_server: Any
) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", KEY)
    dead = f"redis://127.0.0.1:{redis_server.port + 1 if redis_server.port < 65535 else 1}/0"
    store = TokenStore.redis(dead)  # no I/O yet
    assert store.protection.kind == "environment"
    assert store.description.endswith("key from the MCP_CLIENT_AUTH_KEY environment variable")
    with pytest.raises(StorageError, match=r"could not reach Redis at redis://127\.0\.0\.1"):
        await store.get(URL)


async def test_key_file_without_keyring_and_a_second_host_without_the_key(
    make_store: MakeStore,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "mcp_client_auth.store"):
        store = make_store(key=None)  # no key=, no MCP_CLIENT_AUTH_KEY, no keyring here
    assert store.protection.kind == "key file"
    key_file = Path(store.protection.where)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert f"key in the key file {key_file}" in store.description
    assert "protected only by its file" in caplog.text
    await store.put(record())
    assert await make_store(key=None).get(URL) == record()  # this host: the same key file

    other_home = tmp_path / "other-host"
    other_home.mkdir()
    monkeypatch.setenv("HOME", str(other_home))
    keys.forget_keys()
    with pytest.raises(StorageError) as info:
        make_store(key=None)
    message = str(info.value)
    assert "holds entries, but its key is missing" in message
    assert "every host sharing this store needs the same key" in message
    # the key file's key, given explicitly, works there
    given = key_file.read_text().splitlines()[-1]
    assert await make_store(key=given).get(URL) == record()


async def test_key_in_a_real_keyring(
    make_store: MakeStore, redis_url: str, secret_service: SecretService, monkeypatch: Any
) -> None:
    secret_service.use(monkeypatch)
    store = make_store(key=None)
    assert store.protection.kind == "keyring"
    assert store.description.endswith("key in the system keyring (SecretService)")
    await store.put(record())
    kept = secret_service.lookup(redis_url)
    assert kept and len(parse_keys(kept, source="test")) == 1
    keys.forget_keys()
    assert await make_store(key=None).get(URL) == record()


def test_import_does_not_import_redis() -> None:
    code = (
        "import sys, mcp_client_auth\n"
        "from mcp_client_auth import TokenStore\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'redis' or 'stores.redis' in m]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the lock ----------------------------------------------------------------------------------

COUNTER = textwrap.dedent(
    """
    import asyncio, dataclasses, sys, time
    from mcp_client_auth.store import TokenStore

    async def main(url, key, rounds, locked, resource):
        store = TokenStore.redis(url, key=key, lock_lease=5)
        await store.get(resource)  # connected and checked before the start
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for _ in range(rounds):
            if locked:
                async with store.lock(resource):
                    await bump(store, resource)
            else:
                await bump(store, resource)
        await store.aclose()

    async def bump(store, resource):
        record = await store.get(resource)
        time.sleep(0.002)  # a refresh takes a while: widen the window a race needs
        await store.put(dataclasses.replace(record, extra={"n": record.extra["n"] + 1}))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "locked",
                     sys.argv[5]))
    """
)


async def run_counters(store: TokenStore, url: str, mode: str, processes: int = 8) -> int:
    rounds = 20
    await store.put(ServerRecord(URL, extra={"n": 0}))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, url, KEY, str(rounds), mode, URL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for proc in children:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in children:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in children:
            assert await asyncio.to_thread(proc.wait, 120) == 0
    finally:
        for proc in children:
            proc.kill()
    got = await store.get(URL)
    assert got is not None
    n: int = got.extra["n"]
    return n


async def test_eight_processes_lose_no_update(make_store: MakeStore, redis_url: str) -> None:
    assert await run_counters(make_store(), redis_url, "locked") == 8 * 20


async def test_without_the_lock_updates_are_lost(make_store: MakeStore, redis_url: str) -> None:
    """The control: the same count without the lock loses updates, so the test above has teeth."""
    assert await run_counters(make_store(), redis_url, "unlocked") < 8 * 20


async def test_tasks_of_one_process_exclude_each_other(make_store: MakeStore) -> None:
    store = make_store()
    inside = most = 0

    async def worker() -> None:
        nonlocal inside, most
        async with store.lock(URL):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(5)))
    assert most == 1


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from mcp_client_auth.store import TokenStore

    async def main():
        store = TokenStore.redis(sys.argv[1], key=sys.argv[2], lock_lease=float(sys.argv[4]))
        async with store.lock(sys.argv[3]):
            print("held", flush=True)
            await asyncio.sleep(600)

    asyncio.run(main())
    """
)


async def test_a_dead_holder_frees_the_lock_within_the_lease(
    make_store: MakeStore, redis_url: str
) -> None:
    # The holder renews every lease / 3: a lease of a few seconds, so that a busy machine
    # pausing the holder for a second or two does not let its lease run out while it lives.
    lease = 4.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url, KEY, URL, str(lease)],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = make_store(lock_timeout=30)
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == "held\n"

        async def take() -> bool:
            async with store.lock(URL):
                return True

        waiter = asyncio.create_task(take())
        await asyncio.sleep(2 * lease)
        assert not waiter.done()  # a live holder renews its lease: it keeps the lock
        os.kill(holder.pid, signal.SIGKILL)
        # freed by the lease's expiry: the waiter's own 30 s limit would end in StorageError
        assert await asyncio.wait_for(waiter, timeout=20)
    finally:
        holder.kill()
        holder.wait()


async def test_timeout_is_a_clear_error(make_store: MakeStore, redis_url: str) -> None:
    holder, waiter = make_store(), make_store(lock_timeout=0.3)
    async with holder.lock(URL):
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            async with waiter.lock(URL):
                pass
        assert time.monotonic() - started >= 0.3  # it did wait its lock_timeout first
    message = str(info.value)
    assert "waited 0.3 s for the lock on" in message and URL in message
    assert redis_url in message and "another process" in message
    async with waiter.lock(URL):  # released: free again
        pass


async def test_an_expired_lease_is_reported_not_raised(
    make_store: MakeStore, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    locks = store.lock_factory
    assert isinstance(locks, RedisLocks)
    lock = locks(URL)
    await lock.__aenter__()
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(lock.name)  # as if the lease had run out while this process was paused
    finally:
        client.close()
    with caplog.at_level(logging.WARNING, "mcp_client_auth.store"):
        await lock.__aexit__(None, None, None)
    assert "had expired before it was released" in caplog.text
