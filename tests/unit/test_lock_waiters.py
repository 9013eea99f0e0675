"""A process waiting for another's refresh goes once the new token is stored, not at its turn.

The other process is played by this test: it holds the store's lock (the real file lock of
``TokenStore.default``) for the whole test and stores a fresh token once the provider has found
the lock taken. The provider must send its request with that token while the lock is still
held: with a waiter that needs the lock itself, the request would end in the lock's timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth import TokenStore
from mcp_client_auth.errors import StorageError

from .fake_servers import RESOURCE, FakeServers
from .test_provider_flow import COMBOS, call, provider

LATER = time.time() + 10_000  # the providers' clock: past the stored token's expiry


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())


def logged_in(tmp_path: Path, servers: FakeServers, *, lock_timeout: float) -> TokenStore:
    """A disk store holding the tokens of one login (now expired for a provider at LATER)."""
    store = TokenStore.default(tmp_path, lock_timeout=lock_timeout)
    assert call("httpx-sync", servers, provider(servers, store)).status_code == 200
    servers.seen.clear()
    return store


def on_first_refusal(store: TokenStore, then: Callable[[], None]) -> list[int]:
    """Run ``then`` (in a thread) the first time the store's lock is found taken; count tries."""
    tries = [0]
    fired = threading.Event()
    make = store._lock_factory

    def lock(resource: str) -> Any:
        inner: Any = make(resource)
        real = inner.try_acquire

        def try_acquire() -> bool:
            tries[0] += 1
            got = bool(real())
            if not got and not fired.is_set():
                fired.set()
                threading.Thread(target=then).start()
            return got

        inner.try_acquire = try_acquire
        return inner

    store._lock_factory = lock
    return tries


@pytest.mark.parametrize("combo", COMBOS)
def test_a_waiter_takes_the_token_stored_while_it_waited(combo: str, tmp_path: Path) -> None:
    servers = FakeServers()
    store = logged_in(tmp_path, servers, lock_timeout=60)
    record = asyncio.run(store.get(RESOURCE))
    assert record is not None and record.tokens is not None
    fresh = dataclasses.replace(
        record.tokens, access_token="fresh-from-the-holder", expires_at=LATER + 3600
    )
    servers.access[fresh.access_token] = dict(servers.access[record.tokens.access_token])

    def store_fresh() -> None:  # the holder's refresh ends: a new token is stored
        asyncio.run(TokenStore.default(tmp_path).put(dataclasses.replace(record, tokens=fresh)))

    holder: Any = store.lock(RESOURCE)
    holder.acquire()
    try:
        tries = on_first_refusal(store, store_fresh)
        auth = provider(servers, store, clock=lambda: LATER)
        response = call(combo, servers, auth)
        assert holder.locked  # still held by the other process: the waiter went without it
    finally:
        holder.release()
    assert response.status_code == 200
    assert tries[0] >= 1
    assert servers.count("/token") == 0
    assert [s.headers.get("authorization") for s in servers.seen] == [
        "Bearer fresh-from-the-holder"
    ]


@pytest.mark.parametrize("combo", COMBOS)
def test_a_waiter_with_nothing_new_times_out_and_lets_go(combo: str, tmp_path: Path) -> None:
    servers = FakeServers()
    store = logged_in(tmp_path, servers, lock_timeout=0.3)
    holder: Any = store.lock(RESOURCE)
    holder.acquire()
    auth = provider(servers, store, clock=lambda: LATER)
    try:
        with pytest.raises(StorageError, match=r"waited 0\.3 s for the lock"):
            call(combo, servers, auth)
    finally:
        holder.release()
    # nothing left held in this process: the next request refreshes
    assert call(combo, servers, auth).status_code == 200
    assert servers.count("/token") == 1
