"""Opening the default store: folder, key, marker and locks, put together once.

Kept apart from :mod:`token_store` so that ``import mcp_client_auth`` does not pay for it: this
module, the disk store and the key logic are imported by ``TokenStore.default()`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, SupportsFloat

from ..errors import StorageError
from .codec import key_id
from .disk import EncryptedFileStore
from .file_layer import ENTRIES, LOCKS, MARKER, read_marker, store_has_entries
from .keys import KEYRING_TIMEOUT, StoreKey, load_key
from .locks import FileLock, FileLocks
from .private import private_folder, storage_error

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
        raise storage_error("list", root, exc, folder=True) from exc


class KeyOnFirstWrite(EncryptedFileStore):
    """The default store: a new store's key is kept (keyring or key file) when the first entry
    is written, not when the store is opened."""

    before_first_write: Callable[[], tuple[bytes, ...]] | None = None

    @property
    def key_candidate(self) -> tuple[bytes, ...]:
        return self.codec.keys

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        keep = self.before_first_write
        if keep is not None:
            keys = keep()  # may fail (a locked keyring): then the next write tries again
            self.before_first_write = None
            if keys != self.key_candidate:  # another process kept its key first: use it
                self.use_keys(keys)
        await super().put(key, value, collection=collection, ttl=ttl)


def _init_lock(root: Path) -> FileLock:
    return FileLock(
        root / LOCKS / "store.lock", timeout=INIT_LOCK_TIMEOUT, what=f"the store {root}"
    )


def _find_key(
    root: Path,
    marker: Mapping[str, Any] | None,
    require_keyring: bool,
    timeout: float,
    *,
    create: bool = True,
    candidate: tuple[bytes, ...] | None = None,
) -> StoreKey:
    """The store's key (see :func:`load_key`), told what its marker and folder say."""
    kept_in = marker.get("key_kept_in") if marker else None
    return load_key(
        root,
        require_keyring=require_keyring,
        kept_in=kept_in if isinstance(kept_in, str) else None,
        has_entries=store_has_entries(root),
        timeout=timeout,
        create=create,
        candidate=candidate,
    )


def _keep_key(
    root: Path, candidate: tuple[bytes, ...], require_keyring: bool, timeout: float
) -> tuple[bytes, ...]:
    """Keep a new store's key, under the folder's lock; the key kept by another process first
    wins (nothing was written with ours yet). Then the marker names it."""
    with _init_lock(root):
        key = _find_key(root, read_marker(root), require_keyring, timeout, candidate=candidate)
        store = EncryptedFileStore(root, key.keys, check_marker=False)
        store.write_marker(key_id=key_id(key.keys[0]), key_kept_in=key.protection.place)
    return key.keys


def open_default(
    directory: str | os.PathLike[str] | None = None,
    *,
    require_keyring: bool = False,
    lock_timeout: float = 360.0,
    keyring_timeout: float = KEYRING_TIMEOUT,
) -> tuple[EncryptedFileStore, FileLocks, StoreKey]:
    """The encrypted file store in ``directory``, its lock factory and its key.

    The key is found under a lock on the folder. A store that has none yet gets one that is
    kept (keyring or key file) only when the first entry is written, again under that lock, so
    two processes starting together on a new folder agree on one key, and a store that is
    only opened (a login that fails before storing anything) leaves no key behind. An existing
    folder must be this user's own and not writable by others (:func:`.private.private_folder`).
    """
    root = store_directory(directory)
    try:
        private_folder(root, what="token store folder")
    except OSError as exc:
        raise StorageError(
            f"could not create the token store folder {root}: {exc.strerror}; set "
            f"{HOME_ENV} to a folder this user may write to"
        ) from exc
    with _init_lock(root):
        marker = read_marker(root)
        has_entries = store_has_entries(root)
        kept_in = marker.get("key_kept_in") if marker else None
        key = _find_key(root, marker, require_keyring, keyring_timeout, create=False)
        ids = [key_id(k) for k in key.keys]
        marker_id = marker.get("key_id") if marker else None
        fresh = marker is None or (not has_entries and marker_id not in ids)
        if fresh:
            marker_id = ids[0]
        store = KeyOnFirstWrite(root, key.keys, check_marker=not fresh)
        if key.pending:
            store.before_first_write = lambda: _keep_key(
                root, store.key_candidate, require_keyring, keyring_timeout
            )
        elif fresh or kept_in != key.protection.place:
            store.write_marker(key_id=marker_id, key_kept_in=key.protection.place)
    locks = FileLocks(
        root / LOCKS, lambda resource: store.entry_name(resource, "lock"), timeout=lock_timeout
    )
    return store, locks, key
