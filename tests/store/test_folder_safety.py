"""The store's own folders and files: the user's own, not writable by others, no links followed.

Whoever can write to a folder the store uses can replace what is in it: plant their own key
where the store looks for its key (and read every token encrypted with it from then on), or a
symbolic link where a lock or temp file is made, so that this user's process creates or
truncates a file wherever the link points. As ssh does for ``~/.ssh``, such a folder is refused
with a StorageError naming it, its owner and mode, and the fix; a file in its place that is a
symbolic link is refused and its target left untouched.

The tests run as root here, and root may give a folder away: ``chown`` to ``nobody`` (65534)
makes "a folder of another user" for real.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import TokenStore, file_layer, private
from mcp_client_auth.store.disk import EncryptedFileStore
from mcp_client_auth.store.keys import key_file_path
from mcp_client_auth.store.locks import FileLock
from mcp_client_auth.tokens import ServerRecord, TokenSet

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX owners and modes")

URL = "https://mcp.example.com/mcp"
KEY = bytes(range(32))
NOBODY = 65534


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())


def made(folder: Path, mode: int = 0o700, owner: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, mode)
    if owner is not None:
        os.chown(folder, owner, -1)
    return folder


def assert_names_the_folder(exc: pytest.ExceptionInfo[StorageError], folder: Path) -> str:
    text = str(exc.value)
    assert str(folder) in text, text
    assert f"chmod 700 {shlex.quote(str(folder))}" in text, text
    return text


# --- folders: the user's own, not writable by others -----------------------------------------


@pytest.mark.usefixtures("env_key")
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777, 0o720], ids=oct)
def test_a_store_folder_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    folder = made(tmp_path / "store", mode)
    with pytest.raises(StorageError) as refused:
        TokenStore.default(folder)
    text = assert_names_the_folder(refused, folder)
    assert f"mode {mode & 0o777:o}" in text or f"mode {mode:o}" in text, text
    assert not list(folder.iterdir())  # nothing was written into it


@pytest.mark.usefixtures("env_key")
def test_a_store_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = made(tmp_path / "store", 0o700, owner=NOBODY)
    with pytest.raises(StorageError) as refused:
        TokenStore.default(folder)
    text = assert_names_the_folder(refused, folder)
    assert f"uid {NOBODY}" in text and "another user" in text, text
    assert "mode 700" in text, text
    assert not list(folder.iterdir())


@pytest.mark.usefixtures("env_key")
def test_a_store_folder_that_links_to_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = made(tmp_path / "theirs", 0o700, owner=NOBODY)
    (tmp_path / "store").symlink_to(theirs)
    with pytest.raises(StorageError) as refused:
        TokenStore.default(tmp_path / "store")
    assert_names_the_folder(refused, theirs)
    assert not list(theirs.iterdir())


@pytest.mark.usefixtures("env_key")
async def test_a_store_made_safe_again_works(tmp_path: Path) -> None:
    folder = made(tmp_path / "store", 0o777)
    with pytest.raises(StorageError):
        TokenStore.default(folder)
    os.chmod(folder, 0o700)  # the fix the error names
    store = TokenStore.default(folder)
    await store.put(ServerRecord(URL, tokens=TokenSet("a")))
    assert (await store.get(URL)) is not None


@pytest.mark.usefixtures("env_key")
async def test_a_readable_but_not_writable_folder_is_accepted(tmp_path: Path) -> None:
    """As ssh: 0755 is not dangerous (entries are encrypted; `doctor` still advises 0700)."""
    folder = made(tmp_path / "store", 0o755)
    store = TokenStore.default(folder)
    await store.put(ServerRecord(URL, tokens=TokenSet("a")))


@pytest.mark.usefixtures("env_key")
@pytest.mark.parametrize("sub", ["locks", "entries"])
async def test_a_subfolder_writable_by_others_is_refused(tmp_path: Path, sub: str) -> None:
    folder = tmp_path / "store"
    store = TokenStore.default(folder)
    await store.put(ServerRecord(URL, tokens=TokenSet("a")))
    os.chmod(folder / sub, 0o777)
    with pytest.raises(StorageError) as refused:
        store = TokenStore.default(folder)
        async with store.lock(URL):
            await store.put(ServerRecord(URL, tokens=TokenSet("b")))
    assert_names_the_folder(refused, folder / sub)


def test_an_existing_folder_given_to_the_file_store_is_checked(tmp_path: Path) -> None:
    folder = made(tmp_path / "store", 0o777)
    with pytest.raises(StorageError) as refused:
        EncryptedFileStore(folder, [KEY])
    assert_names_the_folder(refused, folder)


@pytest.mark.parametrize("owner", [None, NOBODY])
def test_a_key_folder_not_safely_ours_is_refused(isolated_home: Path, owner: int | None) -> None:
    """No keyring here (no D-Bus): the key goes to a key file, whose folder must be ours."""
    keys_folder = key_file_path(isolated_home / "store").parent
    made(keys_folder, 0o700 if owner else 0o777, owner=owner)
    with pytest.raises(StorageError) as refused:
        TokenStore.default(isolated_home / "store")
    assert_names_the_folder(refused, keys_folder)
    assert not list(keys_folder.iterdir())  # no key was written where others could read it


def test_a_key_file_planted_in_a_folder_others_can_write_is_not_used(isolated_home: Path) -> None:
    """The attack the rule stops: someone else's key, read as ours, then their tokens."""
    store = isolated_home / "store"
    key_file = key_file_path(store)
    made(key_file.parent, 0o777)
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    os.chmod(key_file, 0o600)
    with pytest.raises(StorageError):
        TokenStore.default(store)


def test_a_key_file_of_another_user_is_refused(isolated_home: Path) -> None:
    """In a folder of ours, left from a time it was open to others (or by a root session)."""
    store = isolated_home / "store"
    key_file = key_file_path(store)
    made(key_file.parent)
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    os.chmod(key_file, 0o600)
    os.chown(key_file, NOBODY, -1)
    with pytest.raises(StorageError, match=f"key file {re.escape(str(key_file))}.*uid {NOBODY}"):
        TokenStore.default(store)


async def test_folders_the_store_makes_are_0700(isolated_home: Path) -> None:
    umask = os.umask(0o000)
    try:
        store = TokenStore.default(isolated_home / "a" / "b" / "store")
        await store.put(ServerRecord(URL, tokens=TokenSet("a")))  # the key is kept from here
    finally:
        os.umask(umask)
    for folder in [
        isolated_home / "a",
        isolated_home / "a" / "b",
        isolated_home / "a" / "b" / "store",
    ]:
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    keys_folder = key_file_path(isolated_home / "a" / "b" / "store").parent
    assert keys_folder.stat().st_mode & 0o777 == 0o700


# --- files: never through a symbolic link ----------------------------------------------------


@pytest.mark.usefixtures("env_key")
async def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = TokenStore.default(folder)
    async with store.lock(URL):
        pass
    [lock_file] = [p for p in (folder / "locks").iterdir() if p.name != "store.lock"]
    target = tmp_path / "elsewhere"
    lock_file.unlink()
    lock_file.symlink_to(target)
    with pytest.raises(StorageError) as refused:
        async with store.lock(URL):
            pass
    assert str(lock_file) in str(refused.value) and "symbolic link" in str(refused.value)
    assert not target.exists()  # not created through the link


@pytest.mark.usefixtures("env_key")
def test_a_symlinked_store_lock_leaves_its_target_untouched(tmp_path: Path) -> None:
    folder = made(tmp_path / "store")
    made(folder / "locks")
    target = tmp_path / "precious"
    target.write_text("keep me")
    (folder / "locks" / "store.lock").symlink_to(target)
    with pytest.raises(StorageError, match="symbolic link"):
        TokenStore.default(folder)
    assert target.read_text() == "keep me"


def test_a_file_lock_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "x.lock").symlink_to(target)
    with (
        pytest.raises(StorageError, match="symbolic link"),
        FileLock(tmp_path / "x.lock", timeout=1, what="x"),
    ):
        pass
    assert not target.exists()


async def test_a_symlinked_temp_file_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EncryptedFileStore(tmp_path / "store", [KEY])
    await store.put("k", {"v": 1})
    monkeypatch.setattr(private.secrets, "token_hex", lambda n: "0" * (2 * n))
    path = store.path("k", "default")
    target = tmp_path / "precious"
    target.write_text("keep me")
    (path.parent / f".{path.name}.{'0' * 8}.tmp").symlink_to(target)
    with pytest.raises(StorageError):
        await store.put("k", {"v": 2})
    assert target.read_text() == "keep me"
    assert await store.get("k") == {"v": 1}


async def test_a_symlinked_entry_or_marker_is_refused(tmp_path: Path) -> None:
    store = EncryptedFileStore(tmp_path / "store", [KEY])
    await store.put("k", {"v": 1})
    path = store.path("k", "default")
    elsewhere = tmp_path / "elsewhere"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    with pytest.raises(StorageError, match="symbolic link"):
        await store.get("k")

    marker = tmp_path / "store" / file_layer.MARKER
    store.write_marker(key_kept_in="here")
    marker.rename(tmp_path / "marker")
    marker.symlink_to(tmp_path / "marker")
    with pytest.raises(StorageError, match="symbolic link"):
        EncryptedFileStore(tmp_path / "store", [KEY])


def test_a_symlinked_key_file_is_refused(isolated_home: Path) -> None:
    store = isolated_home / "store"
    key_file = key_file_path(store)
    made(key_file.parent)
    theirs = isolated_home / "their.key"
    theirs.write_text(Fernet.generate_key().decode() + "\n")
    key_file.symlink_to(theirs)
    with pytest.raises(StorageError, match="symbolic link"):
        TokenStore.default(store)
