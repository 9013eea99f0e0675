"""The store key: real Secret Service keyring, the fallbacks, and honest reporting of each."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import TokenStore, keys
from mcp_client_auth.store.default import open_default, store_directory
from mcp_client_auth.tokens import ServerRecord, TokenSet

if TYPE_CHECKING:
    from .conftest import SecretService

URL = "https://mcp.example.com/mcp"


def data_dir(home: Path) -> Path:
    return home / ".local" / "share" / "mcp-client-auth"


async def put_record(store: TokenStore, n: int = 1) -> None:
    await store.put(ServerRecord(URL, tokens=TokenSet(f"access-{n}", refresh_token="r")))


async def read_n(store: TokenStore) -> str | None:
    record = await store.get(URL)
    return record.tokens.access_token if record and record.tokens else None


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from mcp_client_auth.store import TokenStore
    from mcp_client_auth.tokens import ServerRecord, TokenSet
    async def main():
        store = TokenStore.default()
        if sys.argv[1] == "put":
            await store.put(ServerRecord(sys.argv[2], tokens=TokenSet("from-child")))
        record = await store.get(sys.argv[2])
        print(store.protection.kind, record.tokens.access_token if record else None)
    asyncio.run(main())
    """
)


def child(action: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, action, URL], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# --- where the store lives ------------------------------------------------------------------


def test_directory_resolution(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_directory() == data_dir(isolated_home).resolve()
    monkeypatch.setenv("MCP_CLIENT_AUTH_HOME", str(isolated_home / "env"))
    assert store_directory() == (isolated_home / "env").resolve()
    assert store_directory(isolated_home / "arg") == (isolated_home / "arg").resolve()


def test_the_public_default_directory_and_whether_a_store_exists(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    assert TokenStore.default_directory() == data_dir(isolated_home).resolve()
    monkeypatch.setenv("MCP_CLIENT_AUTH_HOME", str(isolated_home / "env"))
    assert TokenStore.default_directory() == (isolated_home / "env").resolve()
    folder = isolated_home / "arg"
    assert TokenStore.default_directory(folder) == folder.resolve()

    assert not TokenStore.default_exists(folder)
    assert not folder.exists()  # asking made nothing
    assert not TokenStore.default_exists()
    TokenStore.default(folder)
    assert TokenStore.default_exists(folder)
    assert not TokenStore.default_exists()  # $MCP_CLIENT_AUTH_HOME's is still not made


# --- no keyring: the key file -----------------------------------------------------------------


async def test_no_dbus_falls_back_to_a_key_file(
    isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        store = TokenStore.default()
        TokenStore.default()  # the warning is said once per process
    protection = store.protection
    assert protection.kind == "key file" and not protection.in_keyring
    key_file = Path(protection.where)
    assert key_file.parent == isolated_home / ".config" / "mcp-client-auth" / "keys"
    assert not key_file.exists()  # kept only once an entry is written
    await store.put(ServerRecord(resource="http://127.0.0.1:9/mcp"))
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    assert "protected only by file permissions" in str(protection)
    assert "D-Bus" in str(protection) and "missing" in str(protection)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(key_file) in warnings[0].getMessage()
    assert "file permissions" in warnings[0].getMessage()

    await put_record(store)
    assert await read_n(store) == "access-1"
    marker = json.loads((data_dir(isolated_home) / "store.json").read_text())
    assert marker["key_kept_in"] == f"the key file {key_file}"
    # the key is not in the data folder
    text = key_file.read_text()
    key_line = next(line for line in text.splitlines() if not line.startswith("#"))
    for path in data_dir(isolated_home).rglob("*"):
        if path.is_file():
            assert key_line.encode() not in path.read_bytes()


def test_restart_reads_the_same_key(isolated_home: Path) -> None:
    assert child("put") == "key file from-child"
    assert child("get") == "key file from-child"


def test_require_keyring_refuses_the_key_file(isolated_home: Path) -> None:
    with pytest.raises(StorageError, match=r"require_keyring=True.*missing.*D-Bus"):
        TokenStore.default(require_keyring=True)
    assert not (isolated_home / ".config" / "mcp-client-auth" / "keys").exists()


async def test_lost_key_with_entries_is_an_error_not_a_new_key(isolated_home: Path) -> None:
    store = TokenStore.default()
    await put_record(store)
    Path(store.protection.where).unlink()
    keys.forget_keys()
    with pytest.raises(StorageError, match="holds entries, but its key is missing") as info:
        TokenStore.default()
    assert "the key file" in str(info.value) and "move the folder" in str(info.value)
    assert store.unreadable == 0 and len(list(data_dir(isolated_home).rglob("entries/*/*"))) == 1


async def test_lost_key_without_entries_starts_afresh(isolated_home: Path) -> None:
    store = TokenStore.default()
    await put_record(store)  # the key is kept, and the marker names it
    await store.delete(URL)  # no entries left
    Path(store.protection.where).unlink()
    keys.forget_keys()
    again = TokenStore.default()
    await put_record(again)
    assert await read_n(again) == "access-1"


async def test_environment_key(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", key)
    store = TokenStore.default()
    assert store.protection.kind == "environment"
    assert "MCP_CLIENT_AUTH_KEY" in str(store.protection)
    await put_record(store)
    assert not (isolated_home / ".config").exists()  # no key file
    assert child("get") == "environment access-1"
    with pytest.raises(StorageError, match="require_keyring"):
        TokenStore.default(require_keyring=True)
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    with pytest.raises(StorageError, match="not the key its entries were written with"):
        TokenStore.default()  # a different key: refused, nothing set aside
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", "SECRET-but-not-a-key")
    with pytest.raises(StorageError) as info:
        TokenStore.default()
    assert "SECRET" not in str(info.value)


# --- keyrings that misbehave ------------------------------------------------------------------


@pytest.mark.usefixtures("fake_keyrings")
@pytest.mark.parametrize(
    ("backend", "verdict", "reason"),
    [
        ("fake_keyrings.HangingKeyring", "slow", "did not answer in time"),
        ("fake_keyrings.RaisingKeyring", "missing", "PasswordSetError"),
        ("fake_keyrings.PlaintextKeyring", "missing", "plain text"),
        ("keyring.backends.fail.Keyring", "missing", "no keyring backend"),
        ("keyring.backends.null.Keyring", "missing", "no keyring backend"),
    ],
)
@pytest.mark.timeout(30)  # a hanging keyring must not hang the probe (it would wait 60 s)
def test_probe_verdicts(
    monkeypatch: pytest.MonkeyPatch, backend: str, verdict: str, reason: str
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    # A short limit only where the backend hangs: one that answers at once gets a generous
    # one, so that a busy machine pausing this process for half a second does not make it
    # "slow" instead of what it is.
    probe = keys.probe_keyring(timeout=0.5 if verdict == "slow" else 20)
    assert (probe.verdict, probe.works) == (verdict, False)
    assert reason in probe.reason


def test_probe_with_a_dbus_address_that_leads_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    probe = keys.probe_keyring()
    assert probe.verdict == "missing"
    assert probe.backend == "keyring.backends.SecretService.Keyring"  # not "none"
    assert "D-Bus session bus" in probe.reason and "cannot be reached" in probe.reason
    assert "No such file or directory" in probe.reason and "[Errno" not in probe.reason


@pytest.mark.usefixtures("fake_keyrings")
def test_probe_of_a_backend_that_raises_oserror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "fake_keyrings.OSErrorKeyring")
    probe = keys.probe_keyring()
    assert probe.verdict == "missing"
    assert probe.backend == "fake_keyrings.OSErrorKeyring"
    assert "FileNotFoundError: No such file or directory (/run/user/1000/bus)" in probe.reason


@pytest.mark.timeout(40)
@pytest.mark.usefixtures("fake_keyrings")
@pytest.mark.parametrize(
    ("backend", "note"),
    [
        ("fake_keyrings.HangingKeyring", "slow"),
        ("fake_keyrings.RaisingKeyring", "missing"),
        ("fake_keyrings.PlaintextKeyring", "plain text"),
    ],
)
async def test_bad_keyring_falls_back_without_hanging(
    monkeypatch: pytest.MonkeyPatch, backend: str, note: str
) -> None:
    from fake_keyrings import PlaintextKeyring  # type: ignore[import-not-found]

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    store = TokenStore.default()  # the real 3 s timeout (the hanging one waits 60 s)
    assert store.protection.kind == "key file"
    assert note in store.protection.note
    assert PlaintextKeyring.stored == {}  # nothing was put into the plaintext "keyring"
    with pytest.raises(StorageError, match="require_keyring"):
        open_default(require_keyring=True, keyring_timeout=0.5)
    await put_record(store)
    assert await read_n(store) == "access-1"


# --- the real Secret Service ------------------------------------------------------------------


def test_probe_real_keyring(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_service.use(monkeypatch)
    probe = keys.probe_keyring()
    assert probe.works, probe
    assert probe.backend == "keyring.backends.SecretService.Keyring"
    out = subprocess.run(  # the trial entry was deleted
        [shutil.which("secret-tool") or "secret-tool", "search", "--all", "service", keys.SERVICE],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": secret_service.address},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert "keyring probe" not in out.stdout + out.stderr


async def test_key_in_real_keyring_and_nowhere_on_disk(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    store = TokenStore.default(require_keyring=True)
    assert store.protection.kind == "keyring" and store.protection.in_keyring
    assert str(store.protection) == "encrypted; key in the system keyring (SecretService)"
    folder = str(data_dir(isolated_home).resolve())
    assert secret_service.lookup(folder) is None  # kept only once an entry is written
    await put_record(store)
    text = secret_service.lookup(folder)
    assert text is not None
    [raw] = [base64.urlsafe_b64decode(t) for t in text.split(",")]
    assert len(raw) == 32
    for path in isolated_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert text.encode() not in data and raw not in data, path
    assert not (isolated_home / ".config" / "mcp-client-auth" / "keys").exists()
    marker = json.loads((data_dir(isolated_home) / "store.json").read_text())
    assert marker["key_kept_in"] == "the system keyring (SecretService)"
    # a new process finds the key in the keyring and reads what this one wrote
    assert child("get") == "keyring access-1"


async def test_key_file_moves_into_the_keyring_once_it_works(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = TokenStore.default()  # no D-Bus yet: key file
    await put_record(before)
    key_file = Path(before.protection.where)
    key_text = next(x for x in key_file.read_text().splitlines() if not x.startswith("#"))

    secret_service.use(monkeypatch)
    after = TokenStore.default()
    assert after.protection.kind == "keyring"
    assert not key_file.exists()
    assert secret_service.lookup(str(data_dir(isolated_home).resolve())) == key_text
    assert await read_n(after) == "access-1"


async def test_locked_keyring(
    locked_secret_service: SecretService,
    secret_service: SecretService,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    locked_secret_service.use(monkeypatch)
    probe = keys.probe_keyring()
    assert probe.verdict == "locked", probe
    # a new store falls back, and says why
    fresh = TokenStore.default(isolated_home / "fresh")
    assert fresh.protection.kind == "key file" and "locked" in fresh.protection.note
    with pytest.raises(StorageError, match="locked"):
        TokenStore.default(isolated_home / "strict", require_keyring=True)

    # a store whose key is in a keyring that is now locked: a clear error, no new key
    secret_service.use(monkeypatch)
    store = TokenStore.default(isolated_home / "kept")
    await put_record(store)
    locked_secret_service.use(monkeypatch)
    with pytest.raises(StorageError, match=r"its key is missing.*system keyring.*locked"):
        TokenStore.default(isolated_home / "kept")
    assert not keys.key_file_path(store_directory(isolated_home / "kept")).exists()
    secret_service.use(monkeypatch)  # unlocked again: everything is there
    assert await read_n(TokenStore.default(isolated_home / "kept")) == "access-1"


def test_import_stays_light() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mcp_client_auth, mcp_client_auth.store; "
            "print(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'keyring', 'cryptography', 'key_value', 'platformdirs', 'secretstorage'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_protection_of_other_stores() -> None:
    memory = TokenStore.memory()
    assert memory.protection.kind == "memory" and not memory.protection.in_keyring
    assert str(memory.protection) == "in memory only; forgotten when the process exits"
    assert memory.unreadable == 0 and memory.directory is None
    from key_value.aio.stores.memory import MemoryStore
    from key_value.aio.wrappers.prefix_keys import PrefixKeysWrapper

    custom = TokenStore(PrefixKeysWrapper(MemoryStore(), prefix="p"), description="a shared Redis")
    assert custom.protection.kind == "custom"
    assert str(custom.protection) == "as protected by a shared Redis"


async def test_a_key_is_kept_only_when_the_first_entry_is_written(isolated_home: Path) -> None:
    """Opening a store, reading it, or a login that fails before storing anything leaves no
    key file (nor keyring entry) behind: key files of never-used folders used to pile up."""
    folder = isolated_home / "never-written"
    store = TokenStore.default(folder)
    assert await store.get(URL) is None
    key_file = Path(store.protection.where)
    assert not key_file.exists()
    assert not TokenStore.default_exists(folder)  # no marker either
    keys.forget_keys()
    other = TokenStore.default(folder)  # another process, meanwhile: its own candidate key
    await put_record(other)
    assert key_file.exists()
    await put_record(store, 2)  # the first one's candidate lost: it uses the kept key
    keys.forget_keys()
    assert await read_n(TokenStore.default(folder)) == "access-2"
    assert TokenStore.default_exists(folder)


async def test_orphan_key_files_are_listed_and_removed(isolated_home: Path) -> None:
    gone, live = isolated_home / "gone", isolated_home / "live"
    for folder in (gone, live):
        await put_record(TokenStore.default(folder))
    gone_key = TokenStore.default_key_file(gone)
    shutil.rmtree(gone)
    assert TokenStore.orphan_key_files() == [gone_key]
    assert TokenStore.remove_orphan_key_files() == [gone_key]
    assert not gone_key.exists() and TokenStore.default_key_file(live).exists()
    assert TokenStore.orphan_key_files() == []


async def test_orphan_key_listing_refuses_a_key_folder_others_may_write_to(
    isolated_home: Path,
) -> None:
    """What another user planted in a shared key folder decides nothing: the listing (and so
    ``logout --all``, which deletes what it lists) stops with a typed error naming the folder."""
    gone = isolated_home / "gone"
    await put_record(TokenStore.default(gone))
    shutil.rmtree(gone)
    folder = TokenStore.default_key_file(gone).parent
    folder.chmod(0o777)
    with pytest.raises(StorageError, match="chmod 700"):
        TokenStore.orphan_key_files()
    with pytest.raises(StorageError):
        TokenStore.remove_orphan_key_files()
    assert TokenStore.default_key_file(gone).exists()


async def test_orphan_key_listing_skips_a_fifo_in_the_key_folder(isolated_home: Path) -> None:
    """A FIFO named like a key file is no key file: opened without blocking, then passed over."""
    gone = isolated_home / "gone"
    await put_record(TokenStore.default(gone))
    gone_key = TokenStore.default_key_file(gone)
    shutil.rmtree(gone)
    os.mkfifo(gone_key.parent / ("f" * 16 + ".key"))
    assert TokenStore.orphan_key_files() == [gone_key]
