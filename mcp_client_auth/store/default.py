"""Opening the default store: folder, key, marker and locks, put together once.

Kept apart from :mod:`token_store` so that ``import mcp_client_auth`` does not pay for it: this
module, the disk store and the key logic are imported by ``TokenStore.default()`` only.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StorageError
from .disk import (
    ENTRIES,
    LOCKS,
    MARKER,
    EncryptedFileStore,
    _storage_error,
    key_id,
    read_marker,
    store_has_entries,
)
from .keys import KEYRING_TIMEOUT, StoreKey, load_key
from .locks import FileLock, FileLocks
from .private import private_folder

__all__ = ["HOME_ENV", "open_default", "store_directory", "store_exists"]

HOME_ENV = "MCP_CLIENT_AUTH_HOME"
INIT_LOCK_TIMEOUT = 30.0


def store_directory(directory: str | os.PathLike[str] | None = None) -> Path:
    """The store folder: the argument, else ``$MCP_CLIENT_AUTH_HOME``, else the platform's.

    The platform's is ``platformdirs.user_data_dir("mcp-client-auth")`` (for instance
    ``~/.local/share/mcp-client-auth`` on Linux).
    """
    if directory is None:
        directory = os.environ.get(HOME_ENV) or None
    if directory is None:
        import platformdirs

        directory = platformdirs.user_data_dir("mcp-client-auth", appauthor=False)
    return Path(os.path.realpath(os.path.expanduser(os.fspath(directory))))


def store_exists(directory: str | os.PathLike[str] | None = None) -> bool:
    """Whether a default store was ever made in ``directory`` (as :func:`store_directory`).

    Looks only: creates no folder and no key, so a command that only reads (``status``,
    ``token`` when not logged in) leaves no trace on a machine that never logged in. A folder
    this user cannot look into is a :class:`StorageError` naming it and why, not a bare
    ``PermissionError``: the caller reports store errors, not OS ones.
    """
    root = store_directory(directory)
    try:
        return (root / MARKER).exists() or (root / ENTRIES).is_dir()
    except OSError as exc:
        raise _storage_error("list", root, exc, folder=True) from exc


def open_default(
    directory: str | os.PathLike[str] | None = None,
    *,
    require_keyring: bool = False,
    lock_timeout: float = 360.0,
    keyring_timeout: float = KEYRING_TIMEOUT,
) -> tuple[EncryptedFileStore, FileLocks, StoreKey]:
    """The encrypted file store in ``directory``, its lock factory and its key.

    The first call in a process finds (or makes) the key under a lock on the folder, so two
    processes starting together on a new folder agree on one key. An existing folder must be
    this user's own and not writable by others (:func:`.private.private_folder`).
    """
    root = store_directory(directory)
    try:
        private_folder(root, what="token store folder")
    except OSError as exc:
        raise StorageError(
            f"could not create the token store folder {root}: {exc.strerror}; set "
            f"{HOME_ENV} to a folder this user may write to"
        ) from exc
    with FileLock(root / LOCKS / "store.lock", timeout=INIT_LOCK_TIMEOUT, what=f"the store {root}"):
        marker = read_marker(root)
        has_entries = store_has_entries(root)
        kept_in = marker.get("key_kept_in") if marker else None
        key = load_key(
            root,
            require_keyring=require_keyring,
            kept_in=kept_in if isinstance(kept_in, str) else None,
            has_entries=has_entries,
            timeout=keyring_timeout,
        )
        ids = [key_id(k) for k in key.keys]
        marker_id = marker.get("key_id") if marker else None
        fresh = marker is None or (not has_entries and marker_id not in ids)
        if fresh:
            marker_id = ids[0]
        store = EncryptedFileStore(root, key.keys, check_marker=not fresh)
        if fresh or kept_in != key.protection.place:
            store.write_marker(key_id=marker_id, key_kept_in=key.protection.place)
    locks = FileLocks(
        root / LOCKS, lambda resource: store.entry_name(resource, "lock"), timeout=lock_timeout
    )
    return store, locks, key
