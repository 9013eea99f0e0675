"""Our store under other OAuth clients: FastMCP's ``OAuth(token_storage=TokenStore.kv)`` and
the mcp SDK's provider through :class:`SDKTokenStorage`.

FastMCP's side is its own adapter (``fastmcp.client.auth.oauth.TokenStorageAdapter``, what its
``OAuth`` wraps ``token_storage=`` in), unchanged: what it writes (three collections, keys
made of the server URL, a one-year TTL on tokens, a TTL from the client secret's expiry) is
read back, kept apart per server and from our own records, and encrypted on disk under the
store's key, kept in the system keyring. The end-to-end runs against the real servers are in
``tests/integration/test_foreign_oauth.py``.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from fastmcp.client.auth.oauth import TokenStorageAdapter
from key_value.aio.stores.memory import MemoryStore
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from mcp_client_auth import ConfigurationError, SDKTokenStorage, StorageError, TokenStore
from mcp_client_auth.sdk_storage import CLIENTS_COLLECTION, TOKENS_COLLECTION
from mcp_client_auth.tokens import ServerRecord, TokenSet

from .test_redis import raw_items

if TYPE_CHECKING:
    from .conftest import SecretService

URL = "https://mcp.example.com/mcp"
OTHER = "https://tools.example.org/mcp"
YEAR = 60 * 60 * 24 * 365


def token(n: int = 1, *, expires_in: int | None = 3600) -> OAuthToken:
    return OAuthToken(
        access_token=f"access-secret-{n}",
        refresh_token=f"refresh-secret-{n}",
        expires_in=expires_in,
        scope="mcp:tools",
    )


def client(n: int = 1, *, secret_expires_at: int | None = None) -> OAuthClientInformationFull:
    return OAuthClientInformationFull(
        client_id=f"client-{n}",
        client_secret=None if secret_expires_at is None else f"client-secret-{n}",
        client_secret_expires_at=secret_expires_at,
        redirect_uris=[AnyUrl("http://127.0.0.1:8765/callback")],
        token_endpoint_auth_method="none" if secret_expires_at is None else "client_secret_post",
    )


def lasts(remaining: float | None, lifetime: float, since: float) -> bool:
    """Whether ``remaining`` is what is left of ``lifetime`` started at ``since`` (bounds from
    the clock itself, not a guess at how long the test takes)."""
    return remaining is not None and lifetime - (time.time() - since) - 1 <= remaining <= lifetime


def every_byte(folder: Path) -> bytes:
    """The names and contents of everything under ``folder``."""
    found = []
    for path in folder.rglob("*"):
        found.append(str(path.relative_to(folder)).encode())
        if path.is_file():
            found.append(path.read_bytes())
    return b"\n".join(found)


# --- FastMCP's adapter over TokenStore.kv -------------------------------------------------------


async def test_fastmcp_tokens_and_registration_survive_a_restart(tmp_path: Path) -> None:
    first = TokenStorageAdapter(TokenStore.default(tmp_path).kv, server_url=URL)
    await first.set_client_info(client())
    await first.set_tokens(token())
    issued = time.time()

    again = TokenStorageAdapter(TokenStore.default(tmp_path).kv, server_url=URL)  # a new store
    assert await again.get_tokens() == token()
    assert await again.get_client_info() == client()
    expiry = await again.get_token_expiry()
    assert expiry is not None and issued - 1 <= expiry - 3600 <= time.time()


async def test_fastmcp_collections_and_ttls_are_kept(tmp_path: Path) -> None:
    """Tokens live a year (FastMCP's bound), a registration as long as its client secret; a
    registration whose secret has expired is dropped, by FastMCP, from our store."""
    kv = TokenStore.default(tmp_path).kv
    adapter = TokenStorageAdapter(kv, server_url=URL)
    start = time.time()
    await adapter.set_tokens(token())
    secret_expires = int(time.time()) + 3600
    await adapter.set_client_info(client(secret_expires_at=secret_expires))

    value, ttl = await kv.ttl(f"{URL}/tokens", collection="mcp-oauth-token")
    assert value is not None and value["access_token"] == "access-secret-1"
    assert lasts(ttl, YEAR, start)
    value, ttl = await kv.ttl(f"{URL}/token_expiry", collection="mcp-oauth-token-expiry")
    assert value is not None and lasts(ttl, YEAR, start)
    value, ttl = await kv.ttl(f"{URL}/client_info", collection="mcp-oauth-client-info")
    assert value is not None and value["client_id"] == "client-1"
    assert ttl is not None and 0 < ttl <= secret_expires - time.time() + 1

    await adapter.set_client_info(client(2, secret_expires_at=int(time.time()) - 1))
    assert await adapter.get_client_info() is None
    assert await kv.get(f"{URL}/client_info", collection="mcp-oauth-client-info") is None


async def test_an_entry_past_its_ttl_reads_as_absent(tmp_path: Path) -> None:
    kv = TokenStore.default(tmp_path).kv
    await kv.put(f"{URL}/client_info", client().model_dump(mode="json"), collection="c", ttl=0)
    assert await kv.get(f"{URL}/client_info", collection="c") is None
    assert await kv.ttl(f"{URL}/client_info", collection="c") == (None, None)


async def test_several_servers_and_our_own_records_share_one_store(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path)
    ours = ServerRecord(URL, tokens=TokenSet("our-access", refresh_token="our-refresh"))
    await store.put(ours)
    one = TokenStorageAdapter(store.kv, server_url=URL)
    two = TokenStorageAdapter(store.kv, server_url=OTHER)
    await one.set_tokens(token(1))
    await one.set_client_info(client(1))
    await two.set_tokens(token(2))
    await two.set_client_info(client(2))
    assert (await one.get_tokens(), await two.get_tokens()) == (token(1), token(2))

    await one.clear()  # what FastMCP does when a cached registration is refused
    assert await one.get_tokens() is None and await one.get_client_info() is None
    assert await two.get_tokens() == token(2) and await two.get_client_info() == client(2)
    assert await store.get(URL) == ours
    assert await store.resources() == [URL]  # FastMCP's entries are not our records


async def test_fastmcp_entries_show_neither_urls_nor_secrets_on_disk(tmp_path: Path) -> None:
    adapter = TokenStorageAdapter(TokenStore.default(tmp_path).kv, server_url=URL)
    await adapter.set_tokens(token())
    await adapter.set_client_info(client(secret_expires_at=int(time.time()) + 3600))
    on_disk = every_byte(tmp_path)
    for clear in (URL, "mcp.example.com", "access-secret-1", "refresh-secret-1", "client-1"):
        assert clear.encode() not in on_disk, clear
    assert b"mcp-oauth" not in on_disk  # not even FastMCP's collection names


async def test_fastmcp_entries_are_encrypted_with_the_key_in_the_system_keyring(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    store = TokenStore.default(require_keyring=True)
    assert store.protection.in_keyring
    await TokenStorageAdapter(store.kv, server_url=URL).set_tokens(token())
    folder = store.directory
    assert folder is not None
    key_text = secret_service.lookup(str(folder))
    assert key_text is not None and key_text.encode() not in every_byte(isolated_home)

    out = subprocess.run(  # a new process: the key comes from the keyring again
        [sys.executable, "-c", FASTMCP_CHILD, URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["keyring", "access-secret-1"]


async def test_fastmcp_over_redis_for_a_fleet(redis_url: str) -> None:
    """``TokenStore.redis(...).kv``: FastMCP's entries shared by every host with the key, its
    time-to-live kept by Redis, nothing in clear in Redis."""
    key = Fernet.generate_key().decode()
    one, two = TokenStore.redis(redis_url, key=key), TokenStore.redis(redis_url, key=key)
    try:
        start = time.time()
        await TokenStorageAdapter(one.kv, server_url=URL).set_tokens(token())
        other_host = TokenStorageAdapter(two.kv, server_url=URL)
        assert await other_host.get_tokens() == token()
        _, ttl = await two.kv.ttl(f"{URL}/tokens", collection="mcp-oauth-token")
        assert lasts(ttl, YEAR, start)
        blob = b"\n".join(k + b"\n" + v for k, v in raw_items(redis_url).items())
        for clear in ("mcp.example.com", "access-secret-1", "refresh-secret-1", "mcp-oauth"):
            assert clear.encode() not in blob, clear
    finally:
        await one.aclose()
        await two.aclose()


FASTMCP_CHILD = """
import asyncio, sys
from fastmcp.client.auth.oauth import TokenStorageAdapter
from mcp_client_auth import TokenStore
async def main():
    store = TokenStore.default(require_keyring=True)
    tokens = await TokenStorageAdapter(store.kv, server_url=sys.argv[1]).get_tokens()
    print(store.protection.kind, tokens.access_token)
asyncio.run(main())
"""


# --- SDKTokenStorage ----------------------------------------------------------------------------


async def test_sdk_storage_round_trips_tokens_and_registration(tmp_path: Path) -> None:
    storage = SDKTokenStorage(URL, TokenStore.default(tmp_path))
    assert await storage.get_tokens() is None and await storage.get_client_info() is None
    await storage.set_client_info(client())
    start = time.time()
    await storage.set_tokens(token())

    again = SDKTokenStorage(URL, TokenStore.default(tmp_path))  # a new process, as it were
    assert await again.get_client_info() == client()
    read = await again.get_tokens()
    assert read is not None and read.expires_in is not None
    assert read.model_copy(update={"expires_in": 3600}) == token()
    assert lasts(read.expires_in, 3600, start)


async def test_sdk_storage_hands_back_what_is_left_of_the_lifetime(tmp_path: Path) -> None:
    """The SDK's ``expires_in`` is relative to when the token was issued; read later, it is
    what is left, and 0 once the token has expired (never the original lifetime again)."""
    store = TokenStore.default(tmp_path)
    storage = SDKTokenStorage(URL, store)
    issued = token().model_dump(mode="json")  # expires_in: 3600
    start = time.time()
    value = {"token": issued, "expires_at": start + 100}
    await store.kv.put(URL, value, collection=TOKENS_COLLECTION)
    read = await storage.get_tokens()
    assert read is not None and read.access_token == "access-secret-1"
    assert lasts(read.expires_in, 100, start)

    value = {"token": issued, "expires_at": time.time() - 10}
    await store.kv.put(URL, value, collection=TOKENS_COLLECTION)
    read = await storage.get_tokens()
    assert read is not None and read.expires_in == 0

    await storage.set_tokens(token(2, expires_in=None))
    read = await storage.get_tokens()
    assert read is not None and read.expires_in is None and read.refresh_token == "refresh-secret-2"


async def test_sdk_storage_keeps_servers_apart_and_spellings_together(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path)
    one, two = SDKTokenStorage(URL, store), SDKTokenStorage(OTHER, store)
    await one.set_tokens(token(1))
    await one.set_client_info(client(1))
    await two.set_tokens(token(2))
    await two.set_client_info(client(2))
    same = SDKTokenStorage("HTTPS://MCP.Example.com:443/mcp", store)
    assert (await same.get_client_info(), await two.get_client_info()) == (client(1), client(2))

    await one.clear()
    assert await same.get_tokens() is None and await same.get_client_info() is None
    read = await two.get_tokens()
    assert read is not None and read.access_token == "access-secret-2"
    assert await store.resources() == []  # the SDK's entries are not our records
    assert sorted(await store.kv.keys(collection=TOKENS_COLLECTION)) == [OTHER]  # type: ignore[attr-defined]


async def test_sdk_storage_drops_a_registration_with_an_expired_secret(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path)
    storage = SDKTokenStorage(URL, store)
    expires = int(time.time()) + 3600
    await storage.set_client_info(client(secret_expires_at=expires))
    assert await storage.get_client_info() == client(secret_expires_at=expires)
    _, ttl = await store.kv.ttl(URL, collection=CLIENTS_COLLECTION)
    assert ttl is not None and 0 < ttl <= expires - time.time() + 1

    await storage.set_client_info(client(2, secret_expires_at=int(time.time()) - 1))
    assert await storage.get_client_info() is None  # the SDK registers again


async def test_sdk_storage_sets_aside_what_it_cannot_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore.default(tmp_path)
    await store.kv.put(URL, {"tokens": {"access_token": "a"}}, collection=TOKENS_COLLECTION)
    await store.kv.put(URL, {"client_id": ["not", "a", "string"]}, collection=CLIENTS_COLLECTION)
    storage = SDKTokenStorage(URL, store)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        assert await storage.get_tokens() is None
        assert await storage.get_client_info() is None
    assert len(store.unreadable_files()) == 2  # kept, as doctor lists them
    assert "it is not an OAuth token: token: missing" in caplog.text
    assert "it is not a client registration: client_id: Input should be" in caplog.text
    await storage.set_tokens(token())  # the next login writes afresh
    assert await storage.get_tokens() is not None


async def test_sdk_storage_says_what_is_wrong_with_a_value_without_showing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore.default(tmp_path)
    broken = {"refresh_token": "rt-7", "scope": "s", "expires_in": "soon"}  # no access token
    await store.kv.put(URL, {"token": broken}, collection=TOKENS_COLLECTION)
    client_value = {"client_id": "cid", "client_secret": "cs-7", "redirect_uris": "nowhere"}
    await store.kv.put(URL, client_value, collection=CLIENTS_COLLECTION)
    storage = SDKTokenStorage(URL, store)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        assert await storage.get_tokens() is None
        assert await storage.get_client_info() is None
    assert "access_token: Field required" in caplog.text
    assert "expires_in: Input should be a valid integer" in caplog.text
    assert "redirect_uris" in caplog.text
    for secret in ("rt-7", "cs-7", "soon", "nowhere", "'rt", "'cs"):
        assert secret not in caplog.text, secret

    late = {"token": token().model_dump(mode="json"), "expires_at": "tomorrow"}
    await store.kv.put(URL, late, collection=TOKENS_COLLECTION)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        assert await storage.get_tokens() is None
    assert "expires_at: not a time (a str)" in caplog.text and "tomorrow" not in caplog.text


async def test_sdk_storage_reports_a_failing_store_as_a_storage_error() -> None:
    class Broken(MemoryStore):
        async def get(self, key: str, *, collection: str | None = None) -> Any:
            raise OSError("disk on fire")

    storage = SDKTokenStorage(URL, TokenStore(Broken(), description="a broken store"))
    expected = re.escape("could not read the token store (a broken store)")
    with pytest.raises(StorageError, match=expected):
        await storage.get_tokens()


def test_sdk_storage_refuses_what_is_not_a_token_store_or_a_url(tmp_path: Path) -> None:
    kv = TokenStore.default(tmp_path).kv
    with pytest.raises(ConfigurationError, match=r"store= takes a TokenStore.*TokenStore\(kv\)"):
        SDKTokenStorage(URL, kv)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a usable resource URL"):
        SDKTokenStorage("mcp.example.com/mcp")


def test_sdk_storage_is_named_without_importing_mcp_or_pydantic() -> None:
    code = (
        "import sys, mcp_client_auth\n"
        "storage = mcp_client_auth.SDKTokenStorage('https://mcp.example.com/mcp')\n"
        "print(storage.resource, [m for m in ('mcp', 'pydantic') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["https://mcp.example.com/mcp", "[]"]


def test_sdk_storage_repr_shows_no_secret_and_opens_nothing(tmp_path: Path) -> None:
    storage = SDKTokenStorage(URL)
    assert repr(storage) == f"SDKTokenStorage('{URL}', TokenStore.default() (not opened yet))"
    assert not TokenStore.default_exists()
