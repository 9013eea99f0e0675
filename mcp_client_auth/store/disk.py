"""The encrypted file store: :class:`~.encrypted.EncryptedKeyValue` over files in a folder.

Why our own store rather than py-key-value-aio's ``FileTreeStore`` + ``FernetEncryptionWrapper``:
that pair is far heavier to import, slower to read and list (``benchmarks/README.md``), and
names its files by key, so the URL of every server a person uses sits in clear on disk. This
store implements the same ``AsyncKeyValue`` protocol (so py-key-value-aio's wrappers compose
with it) with nothing but json, hmac and Fernet: the format is :mod:`.codec`'s, the encryption
:mod:`.encrypted`'s, the files :mod:`.file_layer`'s (its docstring shows a store folder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .encrypted import EncryptedKeyValue
from .file_layer import FileLayer, read_marker, store_has_entries
from .private import write_file_atomically

__all__ = ["DEFAULT_COLLECTION", "EncryptedFileStore", "write_file_atomically"]

DEFAULT_COLLECTION = "default"


class EncryptedFileStore(EncryptedKeyValue):
    """py-key-value-aio ``AsyncKeyValue`` over encrypted files, one per entry.

    ``keys`` are 32-byte store keys, newest first: the first encrypts and names new entries,
    all of them decrypt (rotation: add a new key in front, call :meth:`rotate`, drop the old
    one). The caller gets the keys from :mod:`mcp_client_auth.store.keys`. With
    ``check_marker`` the store refuses, with a :class:`StorageError`, keys other than the one
    its ``store.json`` names, before any entry could be mistaken for a corrupt one. ``durable``
    fsyncs the folder after each write, so a new entry also survives a power cut.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keys: Sequence[bytes],
        *,
        default_collection: str = DEFAULT_COLLECTION,
        durable: bool = True,
        check_marker: bool = True,
    ) -> None:
        self.files = FileLayer(directory, durable=durable)
        self.open(self.files, keys, default_collection)
        self.directory = self.files.directory
        if check_marker:
            marker = read_marker(self.directory)
            if marker is not None:
                kept_in = marker.get("key_kept_in") or "an unknown place"
                self.refuse_other_key(marker.get("key_id"), kept_in)

    def folder(self, collection: str | None = None, *, key_index: int = 0) -> Path:
        """The folder of ``collection``'s entries, as the key at ``key_index`` names it."""
        coll = collection or self.default_collection
        return Path(self.files.collection(self.codec.collection_name(coll, key_index)))

    def path(self, key: str, collection: str | None = None, *, key_index: int = 0) -> Path:
        """The file that holds (or would hold) ``key``, under the key at ``key_index``."""
        coll = collection or self.default_collection
        codec = self.codec
        folder = codec.collection_name(coll, key_index)
        return Path(self.files.path(folder, codec.entry_name(key, coll, key_index)))

    @property
    def description(self) -> str:
        return f"encrypted files in {self.directory}"

    def read_marker(self) -> dict[str, Any] | None:
        """The store's marker (format, id of its key, where its key is kept), if any."""
        return read_marker(self.directory)

    def write_marker(self, **fields: Any) -> None:
        """Record (merged over the existing marker) which key wrote this store and where it is."""
        if "key_id" not in fields and "key_id" not in (read_marker(self.directory) or {}):
            fields["key_id"] = self.key_ids[0]
        self.files.write_marker_now(fields)

    def unreadable(self) -> list[Path]:
        """Every entry ever moved aside as unreadable (what ``doctor`` reports)."""
        return self.files.unreadable()

    def has_entries(self) -> bool:
        """True when any entry file exists (used to refuse replacing a lost key silently)."""
        return store_has_entries(self.directory)

    def __repr__(self) -> str:
        return f"EncryptedFileStore({str(self.directory)!r}, keys={list(self.key_ids)})"
