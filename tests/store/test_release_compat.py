"""Stores written by the first release of the store format still read, byte for byte.

The fixtures under ``fixtures/`` were written by the release's own code (format 1), with the key
below given as ``MCP_CLIENT_AUTH_KEY`` so that it can be committed:

* ``disk-store-v1/``: a ``TokenStore.default()`` folder holding two server records (one with a
  client registration and its secret) and one entry of the mcp SDK's storage (another
  collection, through ``TokenStore.kv``);
* ``encrypted-kv-v1.json``: what ``EncryptedKeyValue`` put into the store underneath (a
  py-key-value-aio ``MemoryStore``): every collection, key and value, for the same entries;
* ``redis-v1.json``: every Redis key and string ``TokenStore.redis()`` wrote for them.

Each is read through the public API only, as an upgraded installation would read it: no
rewrite of the format may lose a user's logins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from key_value.aio.stores.memory import MemoryStore

from mcp_client_auth import EncryptedKeyValue, TokenStore
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "6xmLTZpnHn5b1fRZk-9gL2OjD2AOFmbd9RCcQUNGRnI="  # a fixture's key, public on purpose
SDK_COLLECTION = "mcp-sdk-tokens"
SDK_URL = "https://three.example.com/mcp"
SDK_VALUE = {
    "token": {"access_token": "sdk-access-token", "token_type": "Bearer"},
    "expires_at": None,
}


def written_records() -> list[ServerRecord]:
    """The records the fixtures hold, as the release's code was given them."""
    auth = "https://auth.example.com"
    return [
        ServerRecord(
            resource="https://one.example.com/mcp",
            issuer=auth,
            resource_metadata={
                "resource": "https://one.example.com/mcp",
                "authorization_servers": [auth],
            },
            server_metadata={
                "issuer": auth,
                "token_endpoint": f"{auth}/token",
                "authorization_endpoint": f"{auth}/authorize",
            },
            client=ClientRegistration(
                "client-one",
                client_secret="client-secret-one",
                token_endpoint_auth_method="client_secret_post",
                redirect_uris=("http://127.0.0.1:8765/callback",),
                issuer=auth,
                grant_types=("authorization_code", "refresh_token"),
            ),
            tokens=TokenSet(
                "access-token-one",
                refresh_token="refresh-token-one",
                expires_at=4102444800.0,
                scope="read write",
                issued_at=1764000000.0,
            ),
        ),
        ServerRecord(
            resource="https://two.example.com/mcp",
            issuer=auth,
            tokens=TokenSet("access-token-two", expires_at=4102444800.0),
        ),
    ]


def private_copy(source: Path, target: Path) -> Path:
    """The fixture folder copied with the modes the store insists on (git keeps none)."""
    shutil.copytree(source, target)
    for folder, _subfolders, files in os.walk(target):
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)
    return target


async def assert_holds_the_release_entries(store: TokenStore) -> None:
    expected = written_records()
    assert await store.records() == expected
    for record in expected:
        assert await store.get(record.resource) == record
    assert await store.kv.get(SDK_URL, collection=SDK_COLLECTION) == SDK_VALUE


async def test_a_release_disk_store_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = private_copy(FIXTURES / "disk-store-v1", tmp_path / "store")
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", KEY)
    store = TokenStore.default(folder)
    await assert_holds_the_release_entries(store)
    assert store.unreadable_files() == []


async def test_a_release_disk_store_takes_new_writes_beside_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = private_copy(FIXTURES / "disk-store-v1", tmp_path / "store")
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", KEY)
    store = TokenStore.default(folder)
    newer = ServerRecord("https://two.example.com/mcp", issuer="https://other.example.com")
    await store.put(newer)
    again = TokenStore.default(folder)
    assert await again.records() == [written_records()[0], newer]


def test_status_lists_a_release_disk_store(tmp_path: Path) -> None:
    folder = private_copy(FIXTURES / "disk-store-v1", tmp_path / "store")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "MCP_CLIENT_AUTH_KEY": KEY}
    for name in ("MCP_CLIENT_AUTH_HOME", "DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND"):
        env.pop(name, None)
    command = [sys.executable, "-m", "mcp_client_auth", "status", "--json", "--store", str(folder)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    servers = json.loads(done.stdout)["servers"]
    assert [s["resource"] for s in servers] == [r.resource for r in written_records()]
    assert servers[0]["client_id"] == "client-one"
    assert all(s["state"] == "logged in" for s in servers)
    for secret in ("access-token-one", "refresh-token-one", "client-secret-one"):
        assert secret not in done.stdout


async def test_a_release_encrypted_key_value_reads() -> None:
    inner = MemoryStore()
    dump: list[dict[str, Any]] = json.loads((FIXTURES / "encrypted-kv-v1.json").read_text())
    for item in dump:
        await inner.put(item["key"], item["value"], collection=item["collection"])
    await assert_holds_the_release_entries(TokenStore(EncryptedKeyValue(inner, key=KEY)))


async def test_a_release_redis_store_reads(redis_url: str) -> None:
    import redis

    dump: dict[str, str] = json.loads((FIXTURES / "redis-v1.json").read_text())
    client = redis.Redis.from_url(redis_url)
    try:
        for name, value in dump.items():
            client.set(name, value)
    finally:
        client.close()
    store = TokenStore.redis(redis_url, key=KEY)
    try:
        await assert_holds_the_release_entries(store)
    finally:
        await store.aclose()
