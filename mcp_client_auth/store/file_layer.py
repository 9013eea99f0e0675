"""Encrypted entries kept as files in a folder: the plain layer under ``TokenStore.default()``.

One file per entry, named by its hash, holding its Fernet token (see :mod:`.codec`); no key
and no encryption here (:class:`~.encrypted.EncryptedKeyValue` does that over this layer):

* folders are 0700 and files 0600, set explicitly whatever the umask; an existing folder must
  be this user's own and not writable by others, and no file is opened through a symbolic
  link (see :mod:`.private`);
* writes go to a temp file in the same folder, are fsynced, then ``os.replace``-d: a process
  killed mid-write leaves the old entry or the new one, never a broken one;
* an entry is set aside by a rename, so it is kept (``doctor`` lists it) and never deleted.

File I/O happens inside the ``async`` methods without a thread hop: reading or writing a small
local file is cheaper than a hop to a worker thread, and doing no awaiting keeps the store
usable from asyncio and trio alike, and from sync code with no event loop at all.

Layout of a store folder::

    store.json                          which key the store was written with (its id, no secret)
    entries/<hmac(collection)>/<hmac(collection, key)>            one entry
    entries/<hmac(collection)>/<name>.unreadable-<time>-<rand>    an entry moved aside
    locks/<hmac(collection, key)>.lock  cross-process locks (see locks.py)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .aside import UNREADABLE
from .codec import FORMAT, NAME_LEN
from .private import (
    check_private_folder,
    private_folder,
    read_private_file,
    storage_error,
    write_file_atomically,
)

__all__ = ["ENTRIES", "LOCKS", "MARKER", "FileLayer", "read_marker", "store_has_entries"]

logger = logging.getLogger("mcp_client_auth.store")

MARKER = "store.json"
ENTRIES = "entries"
LOCKS = "locks"


class FileLayer:
    """Entries as files under ``directory/entries``; ``durable`` fsyncs the folder after each
    write, so that a new entry also survives a power cut."""

    never_suspends = True

    def __init__(self, directory: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.directory = Path(directory).absolute()
        self.durable = durable
        self._root = self.directory / ENTRIES
        self._root_text = str(self._root)
        self._made: set[str] = set()
        check_private_folder(self.directory, what="token store folder")
        check_private_folder(self._root, what="token store folder")

    @property
    def where(self) -> str:
        return f"the folder {self.directory}"

    @property
    def key_advice(self) -> str:
        return (
            "Restore that key (unlock the keyring, or set MCP_CLIENT_AUTH_KEY to it), or move "
            f"the folder {self.directory} away to start over (you will log in again)"
        )

    def path(self, folder: str, name: str) -> str:
        """The file of the entry ``name`` in the hashed collection ``folder``."""
        return f"{self._root_text}{os.sep}{folder}{os.sep}{name}"

    def collection(self, folder: str) -> str:
        return str(self._root / folder)

    def describe(self, folder: str, name: str) -> str:
        return self.path(folder, name)

    def token(self, stored: Any) -> bytes | None:
        return stored if isinstance(stored, bytes) else None

    def wrap(self, token: bytes) -> bytes:
        return token

    # --- reading -------------------------------------------------------------------------------

    async def get(self, folder: str, name: str) -> bytes | None:
        return self._read(self.path(folder, name))

    def _read(self, path: str) -> bytes | None:
        try:
            return read_private_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error("read", Path(path), exc) from exc

    async def get_many(self, folder: str, names: Sequence[str]) -> list[bytes | None]:
        return [self._read(self.path(folder, name)) for name in names]

    async def names(self, folder: str) -> list[str]:
        path = self._root / folder
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise storage_error("list", path, exc, folder=True) from exc

    async def folders(self) -> list[str]:
        """Every hashed collection in the store (a rotation reads them all)."""
        try:
            return [e.name for e in os.scandir(self._root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []

    # --- writing -------------------------------------------------------------------------------

    async def put(self, folder: str, name: str, stored: bytes, *, ttl: float | None) -> None:
        """Write the entry (its expiry is in its header: no file system keeps one)."""
        path = Path(self.path(folder, name))
        if folder not in self._made:
            self._make_folder(folder)
        try:
            write_file_atomically(path, stored, sync_dir=self.durable)
        except StorageError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise
            self._make_folder(folder)  # the folder was removed under us: make it again
            write_file_atomically(path, stored, sync_dir=self.durable)

    def _make_folder(self, folder: str) -> None:
        path = self._root / folder
        try:
            private_folder(path, what="token store folder")
        except OSError as exc:
            raise storage_error("create the folder", path, exc, folder=True) from exc
        self._made.add(folder)

    async def delete(self, folder: str, name: str) -> bool:
        path = self.path(folder, name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error("delete", Path(path), exc) from exc
        return True

    async def move_if_unchanged(self, folder: str, name: str, new_name: str, stored: bytes) -> bool:
        """Rename the file to ``new_name`` unless a writer replaced it since it was read."""
        path = self.path(folder, name)
        try:
            if read_private_file(path) != stored:
                return False  # replaced meanwhile by a writer: the new entry is not ours
        except FileNotFoundError:
            return False
        except OSError:
            pass
        os.replace(path, self.path(folder, new_name))
        return True

    # --- the marker, and what doctor reads ---------------------------------------------------

    async def claim_marker(self, marker: dict[str, Any]) -> Mapping[str, Any] | None:
        return None  # checked when the store is opened (``default.py`` writes it)

    async def write_marker(self, fields: dict[str, Any]) -> None:
        self.write_marker_now(fields)

    def write_marker_now(self, fields: Mapping[str, Any]) -> None:
        """Record ``fields`` (merged over the existing marker): which key wrote this store, and
        where that key is kept."""
        marker = read_marker(self.directory) or {}
        marker.update(fields)
        marker["format"] = FORMAT
        try:
            private_folder(self.directory, what="token store folder")
        except OSError as exc:
            raise storage_error("create the folder", self.directory, exc, folder=True) from exc
        data = json.dumps(marker, indent=1, sort_keys=True).encode() + b"\n"
        write_file_atomically(self.directory / MARKER, data, sync_dir=self.durable)

    def unreadable(self) -> list[Path]:
        """Every entry ever moved aside as unreadable (what ``doctor`` reports)."""
        found: list[Path] = []
        try:
            folders = list(os.scandir(self._root))
        except FileNotFoundError:
            return found
        for folder in folders:
            if folder.is_dir(follow_symlinks=False):
                found.extend(Path(e.path) for e in os.scandir(folder.path) if UNREADABLE in e.name)
        return sorted(found)


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The marker of the store in ``directory``, or None (new store, or an unreadable marker)."""
    path = directory / MARKER
    try:
        data = json.loads(read_private_file(path, what="token store marker"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the unreadable token store marker %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def store_has_entries(directory: Path) -> bool:
    """True when the store folder holds any entry file, without needing its key."""
    try:
        folders = list(os.scandir(directory / ENTRIES))
    except FileNotFoundError:
        return False
    for folder in folders:
        if folder.is_dir(follow_symlinks=False):
            for e in os.scandir(folder.path):
                if len(e.name) == NAME_LEN:
                    return True
    return False
