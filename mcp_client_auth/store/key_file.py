"""The key file: a store's key where no system keyring works, and key files left behind.

A 0600 file in the user config folder, apart from the data, announced by one WARNING per
process: only file permissions protect it. Its folder must be this user's own and not writable
by others, and the file is never read through a symbolic link (see :mod:`.private`): a key
planted there by someone else would make every token stored afterwards theirs to read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
from pathlib import Path

from ..errors import StorageError
from .codec import format_key, parse_keys
from .private import check_private_folder, open_private, private_folder, write_file_atomically

__all__ = [
    "folder_key_hash",
    "key_file_path",
    "orphan_key_files",
    "read_key_file",
    "remove_orphan_key_files",
    "store_of_key_file",
    "user_config_dir",
    "write_key_file",
]

logger = logging.getLogger("mcp_client_auth.store")


def folder_key_hash(directory: Path | str) -> str:
    """A stable, non-secret short name for a store folder (used to name its key file)."""
    return hashlib.sha256(os.fsencode(str(directory))).hexdigest()[:24]


def key_file_path(directory: Path | str) -> Path:
    """Where the key of the store in ``directory`` goes when there is no keyring.

    In the user config folder, apart from the data, so that a copy or backup of the data
    folder alone does not carry its key. ``directory`` may also name a store that is not a
    folder (a Redis URL without its password).
    """
    return user_config_dir() / "keys" / f"{folder_key_hash(directory)}.key"


def user_config_dir() -> Path:
    """``platformdirs.user_config_dir("mcp-client-auth")``; on Linux and the BSDs the XDG rule
    itself (``$XDG_CONFIG_HOME`` or ``~/.config``), without importing platformdirs."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        root = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return Path(root) / "mcp-client-auth"
    import platformdirs

    return Path(platformdirs.user_config_dir("mcp-client-auth", appauthor=False))


_KEY_FILE_HEADER = "# mcp-client-auth: the key of the token store in "


# The header line names a folder: a path, never longer than this (PATH_MAX with room to spare).
_KEY_FILE_HEAD_BYTES = 16384


def store_of_key_file(path: Path) -> str | None:
    """The store a key file says it is for, when its name agrees (the hash of that store).

    Read as the key reader reads it (:func:`.private.open_private`): never through a link, and
    only a regular file (opened without blocking, so a FIFO planted there cannot hang ``logout
    --all`` or ``doctor``); anything else is no key file of ours.
    """
    try:
        fd = open_private(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), what="key file")
    except (OSError, StorageError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _KEY_FILE_HEAD_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        first = head.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not first.startswith(_KEY_FILE_HEADER):
        return None
    store = first[len(_KEY_FILE_HEADER) :]
    return store if folder_key_hash(store) == path.stem else None


def orphan_key_files() -> list[Path]:
    """Key files of store folders that no longer exist (a temporary folder of a test or a
    demo, a store moved away): no store can ever use them again.

    Only a file whose name is the hash of the absolute folder its first line names counts, so
    the key of a live store, or of a store that is not a folder (Redis), is never listed.
    Raises :class:`StorageError` for a key folder that is not safely this user's own (see
    :mod:`.private`): what others may have planted there decides nothing.
    """
    keys_dir = key_file_path("/").parent
    check_private_folder(keys_dir, what="key folder")
    try:
        candidates = sorted(keys_dir.glob("*.key"))
    except OSError:
        return []
    orphans = []
    for path in candidates:
        store = store_of_key_file(path)
        if store is not None and os.path.isabs(store) and not os.path.lexists(store):
            orphans.append(path)
    return orphans


def remove_orphan_key_files() -> list[Path]:
    """Delete :func:`orphan_key_files` (each checked again just before); return those removed."""
    removed = []
    for path in orphan_key_files():
        store = store_of_key_file(path)
        if store is None or os.path.lexists(store):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"could not remove the key file {path}: {exc.strerror}") from exc
        removed.append(path)
    return removed


def read_key_file(path: Path) -> tuple[bytes, ...] | None:
    check_private_folder(path.parent, what="key folder")
    try:
        fd = open_private(path, os.O_RDONLY, what="key file")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"could not read the key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        if os.name == "posix":
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():  # a key someone else made is theirs to read
                raise StorageError(
                    f"refusing the key file {path} (owner uid {info.st_uid}, mode "
                    f"{info.st_mode & 0o7777:o}): it belongs to another user, so its key is no "
                    "secret of yours. Fix: move it away; if "
                    "the store has entries, restore its own key (or start over, logging in again)"
                )
            mode = info.st_mode & 0o777
            if mode & 0o077:
                logger.warning(
                    "the key file %s was readable by other users (mode %o); made it 0600",
                    path,
                    mode,
                )
                os.fchmod(fd, 0o600)
        text = file.read().decode("utf-8", errors="replace")  # no valid key: parse_keys says so
    return parse_keys(text, source=f"the key file {path}")


def write_key_file(path: Path, keys: tuple[bytes, ...], directory: Path | str) -> None:
    try:
        private_folder(path.parent, what="key folder")
    except OSError as exc:
        raise StorageError(
            f"could not create the folder {path.parent} for the store key: {exc.strerror}"
        ) from exc
    text = (
        f"{_KEY_FILE_HEADER}{directory}\n"
        "# Anyone who can read this file can read the tokens in that store. Keep it 0600.\n"
        + "".join(format_key(k) + "\n" for k in keys)
    )
    write_file_atomically(path, text.encode("utf-8"))
