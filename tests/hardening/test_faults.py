"""Faults: the authorization server down or slow, refused refresh tokens, a failing disk, a
process killed mid-write, eight processes racing for one refresh.

What the store guarantees by itself is tested in tests/store/ and not repeated here:
atomic writes and a kill at any point (test_disk.py::test_killed_at_random_points_never_breaks
_the_entry), disk full / read-only / quota (test_write_failure_keeps_old_entry,
test_read_only_folder), unreadable entries set aside (test_unreadable_entry_is_set_aside), the
keyring locked, missing or hanging (test_keys.py::test_locked_keyring,
test_bad_keyring_falls_back_without_hanging, test_probe_verdicts), the cross-process lock with
8 processes and its timeout (test_locks.py). Here the same faults hit the provider in the
middle of a refresh or a login, and the question is what the user gets and what is left in
the store.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import (
    LoginRequiredError,
    MCPAuthError,
    OAuthClientProvider,
    StorageError,
    TokenError,
    TokenStore,
)
from tests.servers.in_thread import serve_in_thread
from tests.servers.processes import listening_socket

from .drive import COMBOS, assert_clean, outcome, provider, send, stored
from .hostile import Hostile, Reply, unreachable

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


def later() -> float:
    return time.time() + 7200  # the stored access token has expired for this provider


def logged_in(servers: Hostile, store: TokenStore | None = None) -> tuple[TokenStore, Any]:
    store = store if store is not None else TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200
    before = stored(store, servers)
    assert before is not None and before.tokens is not None and before.tokens.refresh_token
    return store, before


# -- the authorization server down or slow during a refresh ------------------------------------


@pytest.mark.parametrize("kind", ["connect", "timeout"])
@pytest.mark.parametrize("combo", COMBOS)
def test_as_unreachable_during_refresh_keeps_the_tokens(combo: str, kind: str) -> None:
    servers = Hostile()
    store, before = logged_in(servers)
    servers.hooks["token"] = unreachable(kind)
    auth = provider(servers, store, clock=later, combo=combo)
    error = outcome(servers, auth, combo=combo)
    assert isinstance(error, Exception)
    assert servers.logins == 1  # no login over a network failure
    assert stored(store, servers).tokens == before.tokens
    del servers.hooks["token"]  # back up: the same provider refreshes, no login
    assert send(servers, auth, combo=combo).status_code == 200
    assert servers.logins == 1
    assert len(servers.token_requests("refresh_token")) == 2


@pytest.mark.parametrize("kind", ["connect", "timeout"])
@pytest.mark.parametrize("combo", COMBOS)
def test_as_unreachable_during_refresh_is_a_typed_error(combo: str, kind: str) -> None:
    servers = Hostile()
    store, _ = logged_in(servers)
    servers.hooks["token"] = unreachable(kind)
    error = outcome(servers, provider(servers, store, clock=later, combo=combo), combo=combo)
    assert_clean(
        error,
        TokenError,
        r"could not reach https://auth\.example\.com/token for the token refresh: .*"
        r"The stored tokens are kept; try again later\.$",
        servers.secrets,
    )


@pytest.fixture
def as_mock(httpx_mock: HTTPXMock) -> Hostile:
    """The servers behind pytest-httpx: what the provider's own client (get_token) reaches."""
    servers = Hostile()
    httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)
    return servers


@pytest.mark.parametrize("kind", ["connect", "timeout"])
def test_get_token_with_as_unreachable_is_a_typed_error_and_keeps_tokens(
    as_mock: Hostile, kind: str
) -> None:
    store, before = logged_in(as_mock)
    as_mock.hooks["token"] = unreachable(kind)
    with pytest.raises(MCPAuthError) as info:
        provider(as_mock, store, clock=later).get_token()
    assert_clean(
        info.value,
        TokenError,
        r"could not reach https://auth.example.com/token for "
        r"the token refresh",
        as_mock.secrets,
    )
    assert stored(store, as_mock).tokens == before.tokens


def test_get_token_with_as_unreachable_says_retry(as_mock: Hostile) -> None:
    store, _ = logged_in(as_mock)
    as_mock.hooks["token"] = unreachable("connect")
    with pytest.raises(TokenError, match=r"(?i)kept.*try again|retry"):
        provider(as_mock, store, clock=later).get_token()


@pytest.mark.parametrize("kind", ["connect", "timeout"])
def test_logout_with_revocation_unreachable_still_forgets(as_mock: Hostile, kind: str) -> None:
    """The user asked to be logged out: the tokens go, and the result says what failed."""
    store, before = logged_in(as_mock)
    as_mock.hooks["revoke"] = unreachable(kind)
    result = provider(as_mock, store).logout()
    assert result.forgotten and result.revoked == ()
    [error] = result.errors  # the access token is not tried once the server is unreachable
    assert error.startswith("refresh_token: could not reach https://auth.example.com/revoke")
    assert [s for s in as_mock.secrets if s in error] == []
    record = stored(store, as_mock)
    assert record is not None and record.tokens is None
    assert record.client == before.client  # the registration is kept (no forget_client)


# -- the refresh token refused -------------------------------------------------------------------


def refuse_refresh(servers: Hostile, error: str = "invalid_grant") -> None:
    servers.on_grant("refresh_token", lambda seen: Reply.json({"error": error}, 400))


@pytest.mark.parametrize("combo", COMBOS)
def test_invalid_grant_drops_the_tokens_and_logs_in_again(combo: str) -> None:
    servers = Hostile()
    store, before = logged_in(servers)
    refuse_refresh(servers)
    assert (
        send(servers, provider(servers, store, clock=later, combo=combo), combo=combo).status_code
        == 200
    )
    assert servers.logins == 2
    after = stored(store, servers)
    assert after.tokens.refresh_token != before.tokens.refresh_token
    assert after.client == before.client  # the registration is reused


def test_invalid_grant_without_login_allowed_says_log_in() -> None:
    servers = Hostile()
    store, before = logged_in(servers)
    refuse_refresh(servers)
    error = outcome(servers, provider(servers, store, clock=later, interactive=False))
    assert_clean(
        error, LoginRequiredError, r"needs a login; log in with this store", servers.secrets
    )
    after = stored(store, servers)
    assert after.tokens is None  # the refused refresh token is not tried again
    assert after.client == before.client and after.server_metadata == before.server_metadata


def test_invalid_client_forgets_a_dynamic_registration() -> None:
    servers = Hostile()
    store, before = logged_in(servers)
    refuse_refresh(servers, "invalid_client")
    assert send(servers, provider(servers, store, clock=later)).status_code == 200
    after = stored(store, servers)
    assert after.client is not None and after.client.client_id != before.client.client_id
    assert servers.count("register") == 2


# -- the store's disk failing in the middle of a flow ----------------------------------------------


def _fail_store_writes(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Every write of the store's temp files fails with ``code`` (the store tests' technique)."""
    real_write = os.write

    def failing_write(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr("mcp_client_auth.store.disk.os.write", failing_write)


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.EROFS, r"read-only"), (errno.ENOSPC, r"free some disk space")],
)
def test_disk_failing_during_refresh_keeps_the_old_entry(
    monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    servers = Hostile()
    store, before = logged_in(servers, TokenStore.default())
    with monkeypatch.context() as patch:
        _fail_store_writes(patch, code)
        auth = provider(servers, store, clock=later)
        error = outcome(servers, auth)
    assert_clean(error, StorageError, rf"{hint}.*Stored entries are intact", servers.secrets)
    again = TokenStore.default()  # a new process's view
    assert stored(again, servers).tokens == before.tokens
    assert again.unreadable_files() == []


def test_read_only_disk_before_a_login_starts_no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is saved after discovery, before the browser: an unwritable store is found
    before the user is sent to sign in for tokens that could not be kept."""
    servers = Hostile()
    store = TokenStore.default()
    _fail_store_writes(monkeypatch, errno.EROFS)
    error = outcome(servers, provider(servers, store))
    assert_clean(error, StorageError, r"read-only", servers.secrets)
    assert servers.logins == 0 and servers.token_requests() == []


def test_unreadable_entry_means_log_in_again(tmp_path: Path) -> None:
    servers = Hostile()
    logged_in(servers, TokenStore.default())
    entries = [p for p in (tmp_path / "store" / "entries").rglob("*") if p.is_file()]
    assert len(entries) == 1
    entries[0].write_bytes(b"gAAAAA-not-a-fernet-token")
    fresh = TokenStore.default()
    error = outcome(servers, provider(servers, fresh, interactive=False))
    assert_clean(error, LoginRequiredError, r"needs a login")
    assert len(fresh.unreadable_files()) == 1  # set aside for `doctor`, not deleted


# -- a process killed while it refreshes -----------------------------------------------------

KILLED_CHILD = textwrap.dedent(
    """
    import sys, time, httpx
    from mcp_client_auth import OAuthClientProvider, TokenStore
    from tests.hardening.hostile import Hostile

    servers = Hostile()
    store = TokenStore.default()
    transport = httpx.MockTransport(servers.handler)
    auth = OAuthClientProvider(servers.resource, store=store, login=servers.approve,
                               transport=transport)
    with httpx.Client(transport=transport, auth=auth) as client:
        assert client.get(servers.resource).status_code == 200
        auth._flow.clock = lambda: time.time() + 7200  # from now on every request refreshes
        print("ready", flush=True)
        while True:
            client.get(servers.resource)
    """
)


def test_killed_while_refreshing_leaves_a_usable_entry() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for i in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_CHILD],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.02 + 0.05 * i)
        child.kill()
        child.wait(10)
        store = TokenStore.default()
        record = stored(store, Hostile())
        assert record is not None, i
        assert record.tokens is not None and record.tokens.refresh_token, i
        assert record.client is not None and record.server_metadata is not None, i
        assert store.unreadable_files() == [], i


# -- eight processes, one refresh -----------------------------------------------------------------

RACING_CHILD = textwrap.dedent(
    """
    import sys, time
    from mcp_client_auth import OAuthClientProvider, TokenStore
    auth = OAuthClientProvider(sys.argv[1], store=TokenStore.default(), interactive=False,
                               clock=lambda: time.time() + 7200)
    print(auth.get_token().access_token, flush=True)
    """
)


def test_eight_processes_refresh_once() -> None:
    """Rotating refresh tokens: a second refresh with the old one would be refused (and the
    tokens dropped), so all eight must wait for the first and read its result."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    servers = Hostile(resource=f"http://127.0.0.1:{port}/mcp", issuer=f"http://127.0.0.1:{port}")
    served = serve_in_thread(servers.asgi, sock)
    try:
        store = TokenStore.default()
        auth = OAuthClientProvider(servers.resource, store=store, login=servers.approve)
        with httpx.Client(auth=auth, trust_env=False) as client:
            assert client.get(servers.resource).status_code == 200
        servers.access_ttl = 100_000  # the refreshed token is valid for the children's clock
        children = [
            subprocess.Popen(
                [sys.executable, "-c", RACING_CHILD, servers.resource],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        results = [child.communicate(timeout=50) for child in children]
    finally:
        served.stop()
    pairs = zip(results, children, strict=True)
    errors = [err for (_, err), child in pairs if child.returncode != 0]
    assert errors == []
    tokens = {out.strip() for out, _ in results}
    assert len(tokens) == 1 and tokens <= servers.secrets
    assert len(servers.token_requests("refresh_token")) == 1
