"""The encrypted file store: round trips, modes, atomic writes, unreadable entries, rotation."""

from __future__ import annotations

import base64
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import codec, file_layer
from mcp_client_auth.store.disk import EncryptedFileStore
from mcp_client_auth.store.token_store import TokenStore
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

URL = "https://mcp.example.com/mcp"
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SECRETS = ("access-token-SECRET-1", "refresh-token-SECRET-2", "client-secret-SECRET-3")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def record(resource: str = URL, n: int = 0) -> ServerRecord:
    return ServerRecord(
        resource=resource,
        issuer="https://auth.example.com",
        client=ClientRegistration("client-1", client_secret=SECRETS[2]),
        tokens=TokenSet(SECRETS[0], refresh_token=SECRETS[1], expires_at=2e9),
        extra={"n": n},
    )


@pytest.fixture
def store(tmp_path: Path) -> EncryptedFileStore:
    return EncryptedFileStore(tmp_path / "store", [KEY_A])


async def test_round_trip_and_protocol(store: EncryptedFileStore) -> None:
    assert await store.get("k") is None
    assert await store.ttl("k") == (None, None)
    await store.put("k", {"a": 1, "nested": {"b": [1, 2]}})
    assert await store.get("k") == {"a": 1, "nested": {"b": [1, 2]}}
    await store.put("k", {"a": 2})
    assert await store.get("k") == {"a": 2}
    assert await store.get("k", collection="other") is None
    await store.put_many(["x", "y"], [{"v": "x"}, {"v": "y"}], collection="other")
    assert await store.get_many(["x", "y", "z"], collection="other") == [
        {"v": "x"},
        {"v": "y"},
        None,
    ]
    assert sorted(await store.keys()) == ["k"]
    assert sorted(await store.keys("other")) == ["x", "y"]
    assert len(await store.keys("other", limit=1)) == 1
    assert await store.ttl_many(["x"], collection="other") == [({"v": "x"}, None)]
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.delete_many(["x", "y", "z"], collection="other") == 2
    assert await store.keys("other") == []


async def test_is_a_py_key_value_store(store: EncryptedFileStore) -> None:
    from key_value.aio.protocols.key_value import AsyncKeyValue
    from key_value.aio.wrappers.prefix_keys import PrefixKeysWrapper

    assert isinstance(store, AsyncKeyValue)
    wrapped = PrefixKeysWrapper(store, prefix="p")  # a wrapper composes with it
    await wrapped.put("k", {"a": 1})
    assert await wrapped.get("k") == {"a": 1}
    assert await store.keys() == ["p__k"]


async def test_folder_removed_under_a_running_store(store: EncryptedFileStore) -> None:
    await store.put("k", {"a": 1})
    shutil.rmtree(store.directory)
    assert await store.get("k") is None
    await store.put("k", {"a": 2})
    assert await store.get("k") == {"a": 2}


async def test_ttl_expires(store: EncryptedFileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    monkeypatch.setattr("time.time", lambda: now)
    await store.put("k", {"a": 1}, ttl=10)
    value, remaining = await store.ttl("k")
    assert value == {"a": 1} and remaining == pytest.approx(10)
    monkeypatch.setattr("time.time", lambda: now + 11)
    assert await store.get("k") is None
    assert await store.keys() == []
    assert await store.cull() == 1


async def test_token_store_over_disk(store: EncryptedFileStore) -> None:
    tokens = TokenStore(store)
    await tokens.put(record())
    got = await tokens.get(URL)
    assert got is not None and got.tokens is not None
    assert got.tokens.refresh_token == SECRETS[1]
    assert await tokens.resources() == [URL]
    assert tokens.directory == store.directory
    assert tokens.unreadable == 0


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
async def test_modes_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = EncryptedFileStore(tmp_path / "a" / "store", [KEY_A])
        await store.put(URL, record().to_dict())
        store.write_marker(key_kept_in="test")
    finally:
        os.umask(old)
    root = tmp_path / "a"
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


async def test_no_secret_and_no_url_in_clear(store: EncryptedFileStore) -> None:
    tokens = TokenStore(store)
    await tokens.put(record())
    await tokens.put(record("https://other.example.org/v1/mcp"))
    needles = [*SECRETS, URL, "mcp.example.com", "other.example.org", "client-1"]
    for path in files_under(store.directory):
        data = path.read_bytes()
        names = str(path.relative_to(store.directory))
        for needle in needles:
            for form in (needle.encode(), base64.b64encode(needle.encode())):
                assert form not in data, (needle, path)
            assert needle not in names
    # the names are keyed hashes: another key gives other names
    other = EncryptedFileStore(store.directory.parent / "other", [KEY_B])
    assert other.entry_name(URL) != store.entry_name(URL)


async def test_listing_many(store: EncryptedFileStore) -> None:
    await store.put_many([f"https://s{i}.example/mcp" for i in range(200)], [{"i": 1}] * 200)
    assert len(await store.keys()) == 200
    assert len(await store.keys(limit=10)) == 10


# --- unreadable entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "other key", "swapped", "not an entry"],
)
async def test_unreadable_entry_is_set_aside(
    store: EncryptedFileStore, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    await store.put(URL, {"a": 1})
    await store.put("https://b.example/mcp", {"b": 2})
    path = store.path(URL, store.default_collection)
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00not a fernet token\xff")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other key":
        other = EncryptedFileStore(store.directory.parent / "o", [KEY_B])
        path.write_bytes(other.codec.encrypt(URL, {"a": 1}, store.default_collection, None))
    elif damage == "swapped":
        other_path = store.path("https://b.example/mcp", store.default_collection)
        path.write_bytes(other_path.read_bytes())
    else:
        path.write_bytes(store.codec.encrypt_plain(b'["a list"]'))
    damaged = path.read_bytes()

    with caplog.at_level(logging.WARNING, logger="mcp_client_auth.store"):
        assert await store.get(URL) is None  # absent, not a crash
    assert str(path) in caplog.text and "unreadable" in caplog.text
    assert not path.exists()
    [aside] = store.unreadable()
    assert aside.read_bytes() == damaged  # moved, never deleted
    assert aside.stat().st_mode & 0o777 == 0o600
    assert store.unreadable_seen == 1
    assert TokenStore(store).unreadable == 1
    # the store goes on working: other entries, listing, a new put
    assert await store.get("https://b.example/mcp") == {"b": 2}
    assert await store.keys() == ["https://b.example/mcp"]
    await store.put(URL, {"a": 3})
    assert await store.get(URL) == {"a": 3}


async def test_unreadable_in_listing(store: EncryptedFileStore) -> None:
    await store.put_many(["a", "b"], [{"a": 1}, {"b": 1}])
    store.path("a", store.default_collection).write_bytes(b"junk")
    assert await store.keys() == ["b"]
    assert len(store.unreadable()) == 1


async def test_wrong_key_is_refused_before_anything_is_set_aside(tmp_path: Path) -> None:
    store = EncryptedFileStore(tmp_path, [KEY_A])
    await store.put(URL, {"a": 1})
    store.write_marker(key_kept_in="the test")
    with pytest.raises(StorageError, match="not the key its entries were written with") as info:
        EncryptedFileStore(tmp_path, [KEY_B])
    assert "was kept in the test" in str(info.value)  # where to look for the right key
    assert f"move the folder {tmp_path} away" in str(info.value)
    assert store.unreadable() == []
    assert await EncryptedFileStore(tmp_path, [KEY_A]).get(URL) == {"a": 1}


# --- rotation -------------------------------------------------------------------------------


async def test_multifernet_rotation(tmp_path: Path) -> None:
    old = EncryptedFileStore(tmp_path, [KEY_A])
    old.write_marker(key_kept_in="test")
    await old.put_many(["a", "b"], [{"v": "a"}, {"v": "b"}])
    await old.put("c", {"v": "c"}, collection="other")

    both = EncryptedFileStore(tmp_path, [KEY_B, KEY_A])  # new key first, old still decrypts
    assert await both.get("a") == {"v": "a"}
    await both.put("a", {"v": "a2"})  # rewritten under the new key's name, old name removed
    assert not old.path("a", old.default_collection).exists()
    assert await both.get("a") == {"v": "a2"}
    assert sorted(await both.keys()) == ["a", "b"]

    assert await both.rotate() == 3
    with pytest.raises(StorageError):
        EncryptedFileStore(tmp_path, [KEY_A])  # the marker now names the new key
    new = EncryptedFileStore(tmp_path, [KEY_B])
    assert await new.get_many(["a", "b"]) == [{"v": "a2"}, {"v": "b"}]
    assert await new.get("c", collection="other") == {"v": "c"}
    assert new.unreadable() == []


# --- atomic writes and write failures ---------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from mcp_client_auth.store.disk import EncryptedFileStore
    store = EncryptedFileStore(sys.argv[1], [bytes.fromhex(sys.argv[2])])
    mode = sys.argv[3]
    if mode == "die-before-replace":
        real = os.replace
        def replace(src, dst):
            if os.path.basename(str(src)).startswith("."):
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = replace
        asyncio.run(store.put("k", {"v": "new" * 1000}))
    elif mode == "loop":
        async def main():
            i = 0
            print("ready", flush=True)
            while True:
                i += 1
                await store.put("k", {"v": str(i) * (1000 + i % 5000)})
        asyncio.run(main())
    """
)


async def test_killed_before_replace_leaves_old_entry(store: EncryptedFileStore) -> None:
    await store.put("k", {"v": "old"})
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(store.directory), KEY_A.hex(), "die-before-replace"],
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL
    assert await store.get("k") == {"v": "old"}
    assert await store.keys() == ["k"]  # the orphaned temp file is ignored
    assert store.unreadable() == []


async def test_killed_at_random_points_never_breaks_the_entry(store: EncryptedFileStore) -> None:
    await store.put("k", {"v": "0"})
    for i in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store.directory), KEY_A.hex(), "loop"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.01 + 0.013 * i)  # let it write for a varying while, then kill it
        proc.kill()
        proc.wait()
        value = await store.get("k")
        assert value is not None and set(value["v"]) <= set("0123456789"), i
        assert store.unreadable() == []


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.ENOSPC, "free some disk space"), (errno.EROFS, "read-only"), (errno.EDQUOT, "quota")],
)
async def test_write_failure_keeps_old_entry(
    store: EncryptedFileStore, monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    await store.put("k", {"v": "old"})
    real_write = os.write

    def failing_write(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):  # only the store's writes
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr("mcp_client_auth.store.disk.os.write", failing_write)
    with pytest.raises(StorageError) as info:
        await store.put("k", {"v": "new"})
    monkeypatch.setattr("mcp_client_auth.store.disk.os.write", real_write)
    message = str(info.value)
    assert str(store.path("k", store.default_collection)) in message
    assert hint in message and "intact" in message
    assert await store.get("k") == {"v": "old"}
    assert [p.name for p in store.folder("default").iterdir()] == [
        store.entry_name("k")
    ]  # no temp file left behind


READ_ONLY_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from mcp_client_auth.errors import StorageError
    from mcp_client_auth.store.disk import EncryptedFileStore
    import cryptography.fernet  # first: the interpreter may be unreadable to them
    if len(sys.argv) > 3:  # drop root, which ignores permissions (and owns no folder here)
        os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[3]))
    store = EncryptedFileStore(sys.argv[1], [bytes.fromhex(sys.argv[2])])
    store.codec.decrypt(store.codec.encrypt("k", {}, "c", None))  # cryptography loaded
    try:
        asyncio.run(store.put("k", {"v": "new"}))
    except StorageError as exc:
        print(exc)
        sys.exit(3)
    """
)


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A folder that an unprivileged user can reach (pytest's tmp_path is 0700 to root)."""
    path = Path(tempfile.mkdtemp(prefix="mcp-client-auth-ro-"))
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if p.is_dir():
                os.chmod(p, 0o700)
        shutil.rmtree(path)


async def test_read_only_folder(reachable_dir: Path) -> None:
    """A real read-only folder, written to by an unprivileged user (root ignores modes)."""
    root = reachable_dir / "store"
    store = EncryptedFileStore(root, [KEY_A])
    await store.put("k", {"v": "old"})
    folder = store.folder("default")
    argv = [sys.executable, "-c", READ_ONLY_CHILD, str(root), KEY_A.hex()]
    if os.geteuid() == 0:
        nobody = 65534
        for path in [reachable_dir, *reachable_dir.rglob("*")]:
            os.chown(path, nobody, nobody)
        argv.append(str(nobody))
    os.chmod(folder, 0o500)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(folder, 0o700)
    assert proc.returncode == 3, proc.stderr
    assert str(folder) in proc.stdout and "Stored entries are intact" in proc.stdout
    assert await store.get("k") == {"v": "old"}
    assert [p.name for p in folder.iterdir()] == [store.entry_name("k")]


async def test_unwritable_store_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, *, what: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    store = EncryptedFileStore(tmp_path / "s", [KEY_A])
    monkeypatch.setattr(file_layer, "private_folder", refuse)
    with pytest.raises(StorageError, match="could not create the folder"):
        await store.put("k", {"a": 1})


def test_bad_keys() -> None:
    with pytest.raises(ValueError):
        EncryptedFileStore("/nonexistent", [])
    with pytest.raises(ValueError):
        EncryptedFileStore("/nonexistent", [b"short"])
    assert "00" not in repr(EncryptedFileStore("/nonexistent", [KEY_A])).split("keys=")[1][:6]


def test_parse_keys_never_echoes_the_text() -> None:
    with pytest.raises(StorageError) as info:
        codec.parse_keys("not-a-key-SECRETISH", source="X")
    assert "SECRETISH" not in str(info.value)
    key = codec.format_key(KEY_A)
    assert codec.parse_keys(f"# comment\n{key}, {codec.format_key(KEY_B)}\n", source="X") == (
        KEY_A,
        KEY_B,
    )
