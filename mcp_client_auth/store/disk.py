"""The encrypted file store: one Fernet-encrypted file per entry, under a hashed name.

Why our own store rather than py-key-value-aio's ``FileTreeStore`` + ``FernetEncryptionWrapper``:
that pair costs about 3x ``import httpx`` to import, is 17-21x slower to read and list, and
names its files by key, so the URL of every server a person uses sits in clear on disk. This
store implements the same ``AsyncKeyValue`` protocol (so py-key-value-aio's wrappers compose
with it) with nothing but json, hmac and Fernet:

* a file's name is an HMAC of (collection, key) under a key derived from the store key, so a
  directory listing reveals nothing; the key itself lives only inside the encrypted content;
* its content is a ``MultiFernet`` token of the entry's JSON, so the key can be rotated;
* folders are 0700 and files 0600, set explicitly whatever the umask; an existing folder must
  be this user's own and not writable by others, and no file is opened through a symbolic
  link (see :mod:`.private`);
* writes go to a temp file in the same folder, are fsynced, then ``os.replace``-d: a process
  killed mid-write leaves the old entry or the new one, never a broken one;
* an entry that cannot be read (corrupt, truncated, wrong key) is moved aside, reported by a
  WARNING naming the file, and treated as absent: the user logs in again instead of crashing,
  and nothing is deleted.

File I/O happens inside the ``async`` methods without a thread hop: reading or writing a small
local file takes a few microseconds, a hop to a worker thread costs more than that, and doing
no awaiting keeps the store usable from asyncio and trio alike.

Layout of a store folder::

    store.json                          which key the store was written with (its id, no secret)
    entries/<hmac(collection)>/<hmac(collection, key)>            one entry
    entries/<hmac(collection)>/<name>.unreadable-<time>-<rand>    an entry moved aside
    locks/<hmac(collection, key)>.lock  cross-process locks (see locks.py)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

from ..errors import StorageError
from .aside import SetAside, report_set_aside
from .batch import BatchFromSingle
from .private import check_private_folder, open_private, private_folder, read_private_file

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = ["DEFAULT_COLLECTION", "EncryptedFileStore", "key_id", "parse_keys"]

logger = logging.getLogger("mcp_client_auth.store")

DEFAULT_COLLECTION = "default"
FORMAT = 1
MARKER = "store.json"
ENTRIES = "entries"
LOCKS = "locks"
UNREADABLE = ".unreadable-"
_NAME_LEN = 40  # hex characters of HMAC-SHA256 kept in a file name (160 bits)
_HEX = frozenset("0123456789abcdef")


def _derive(master: bytes, label: bytes) -> bytes:
    """A sub-key for one purpose, so the name key and the encryption key never coincide."""
    return hmac.digest(master, b"mcp-client-auth/v1/" + label, "sha256")


def key_id(master: bytes) -> str:
    """A public fingerprint of a store key: tells keys apart without revealing them."""
    return _derive(master, b"key-id").hex()[:16]


def parse_keys(text: str, *, source: str) -> tuple[bytes, ...]:
    """Store keys from their text form: Fernet keys (url-safe base64 of 32 bytes), newest first.

    Several keys (separated by commas or newlines; ``#`` starts a comment line) allow rotation:
    the first encrypts, all decrypt. ``source`` names where the text came from, for the error.
    The text is never echoed in the error.
    """
    keys: list[bytes] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for part in line.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                raw = base64.urlsafe_b64decode(part.encode("ascii"))
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raw = b""
            if len(raw) != 32:
                raise StorageError(
                    f"{source} does not hold a valid key (expected a Fernet key: url-safe base64 "
                    'of 32 bytes). Make one with: python -c "from cryptography.fernet import '
                    'Fernet; print(Fernet.generate_key().decode())"'
                )
            keys.append(raw)
    if not keys:
        raise StorageError(f"{source} is empty: it should hold a Fernet key")
    return tuple(keys)


def format_key(master: bytes) -> str:
    """The text form of a store key (a Fernet key), as kept in the keyring or a key file."""
    return base64.urlsafe_b64encode(master).decode("ascii")


def _storage_error(action: str, path: Path, exc: OSError, *, folder: bool = False) -> StorageError:
    """An error a person can act on: what failed, where, and what to do about it.

    ``path`` is the file (or, with ``folder``, the folder) the action was on. Every write goes
    through a temp file, so when one fails the stored entries are still what they were.
    """
    reason = exc.strerror or str(exc)
    where = path if folder else path.parent
    writing = action not in ("read", "list")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some disk space (or raise the disk quota) and try again"
    elif exc.errno == errno.EROFS:
        hint = (
            "the file system is read-only: point MCP_CLIENT_AUTH_HOME at a writable folder, "
            "or pass store=TokenStore.memory()"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM):
        access = "read and write" if writing else "read"
        hint = f"check that this user owns {where} and may {access} it (it should be 0700)"
    else:
        hint = f"check the folder {where} and its disk"
    tail = " Stored entries are intact." if writing else ""
    return StorageError(f"could not {action} {path}: {reason}; {hint}.{tail}")


def write_file_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, ``os.replace``.

    A crash at any point leaves either the old file or the new one. The file is 0600. The
    folder is fsynced after the rename (``sync_dir``) so that the new entry also survives a
    power cut: a rotated refresh token that is lost makes the user log in again.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, what="temp file")
    except OSError as exc:
        raise _storage_error("create a file in", path.parent, exc, folder=True) from exc
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _storage_error("write", path, exc) from exc
    if sync_dir:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder; NTFS journals the rename itself
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Key:
    """One store key and what is derived from it. Never printed."""

    __slots__ = ("id", "master", "name_key")

    def __init__(self, master: bytes) -> None:
        self.master = master
        self.name_key = _derive(master, b"names")
        self.id = key_id(master)

    def fernet_key(self) -> bytes:
        return base64.urlsafe_b64encode(_derive(self.master, b"fernet"))

    def __repr__(self) -> str:
        return f"<store key {self.id}>"


def entry_plaintext(
    key: str, value: Mapping[str, Any], collection: str, ttl: SupportsFloat | None
) -> bytes:
    """What an entry encrypts: a one-line JSON header (key, collection, times), then the value.

    Compact JSON escapes every newline, so the first ``b"\\n"`` ends the header and a listing
    can parse the header alone. Shared by the file and Redis stores, so their entries agree.
    """
    if not isinstance(key, str):
        raise TypeError("keys are strings")
    if not isinstance(value, Mapping):
        raise TypeError("values are mappings (JSON objects)")
    now = time.time()
    head = {
        "collection": collection,
        "key": key,
        "created_at": now,
        "expires_at": None if ttl is None else now + float(ttl),
    }
    try:
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the value stored under {key!r} is not JSON: {exc}") from None
    plain = json.dumps(head, separators=(",", ":"), ensure_ascii=False) + "\n" + body
    return plain.encode("utf-8")


class EncryptedFileStore(BatchFromSingle):
    """py-key-value-aio ``AsyncKeyValue`` over encrypted files, one per entry.

    ``keys`` are 32-byte store keys, newest first: the first encrypts and names new entries,
    all of them decrypt (rotation: add a new key in front, call :meth:`rotate`, drop the old
    one). The caller gets the keys from :mod:`mcp_client_auth.store.keys`. With
    ``check_marker`` the store refuses, with a :class:`StorageError`, keys other than the one
    its ``store.json`` names, before any entry could be mistaken for a corrupt one. ``durable``
    fsyncs the folder after each write, so a new entry also survives a power cut.
    """

    #: Its coroutines complete without awaiting anything (small files, read and written in
    #: place): the sync driver runs a read at once, with no event loop (``run_blocking``).
    never_suspends = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keys: Sequence[bytes],
        *,
        default_collection: str = DEFAULT_COLLECTION,
        durable: bool = True,
        check_marker: bool = True,
    ) -> None:
        if not keys:
            raise ValueError("EncryptedFileStore needs at least one key")
        if any(len(k) != 32 for k in keys):
            raise ValueError("store keys are 32 bytes each")
        self.directory = Path(directory).absolute()
        self.default_collection = default_collection
        self.durable = durable
        self._keys = tuple(_Key(k) for k in keys)
        self._fernet: MultiFernet | None = None
        self._invalid_token: type[Exception] = Exception  # set with the Fernet objects
        self._dirs: dict[tuple[int, str], Path] = {}
        self._paths: dict[tuple[str, str], tuple[str, ...]] = {}
        self._made: set[Path] = set()
        self.unreadable_seen = 0
        """Entries this process found unreadable and moved aside (see :meth:`unreadable`)."""
        check_private_folder(self.directory, what="token store folder")
        check_private_folder(self.directory / ENTRIES, what="token store folder")
        if check_marker:
            self._check_marker()

    # --- keys, names, marker ---------------------------------------------------------------

    def use_keys(self, keys: Sequence[bytes]) -> None:
        """Encrypt and name entries with ``keys`` from now on: for a new store, before its
        first write, when another process kept its key first (see ``default.py``)."""
        self._keys = tuple(_Key(k) for k in keys)
        self._fernet = None
        self._dirs.clear()
        self._paths.clear()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self._keys)

    def _multi_fernet(self) -> MultiFernet:
        # cryptography is imported at first use: `import mcp_client_auth` stays light.
        if self._fernet is None:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet

            self._invalid_token = InvalidToken
            self._fernet = MultiFernet([Fernet(k.fernet_key()) for k in self._keys])
        return self._fernet

    def _collection_dir(self, collection: str, key_index: int = 0) -> Path:
        cached = self._dirs.get((key_index, collection))
        if cached is None:
            digest = hmac.digest(
                self._keys[key_index].name_key, b"c\0" + collection.encode("utf-8"), "sha256"
            )
            cached = self.directory / ENTRIES / digest.hex()[:_NAME_LEN]
            self._dirs[(key_index, collection)] = cached
        return cached

    def entry_name(self, key: str, collection: str | None = None, *, key_index: int = 0) -> str:
        """The file name of an entry: a keyed hash, so the name says nothing about the key."""
        coll = collection or self.default_collection
        msg = b"e\0" + coll.encode("utf-8") + b"\0" + key.encode("utf-8")
        return hmac.digest(self._keys[key_index].name_key, msg, "sha256").hex()[:_NAME_LEN]

    def _path(self, key: str, collection: str, key_index: int = 0) -> Path:
        return self._collection_dir(collection, key_index) / self.entry_name(
            key, collection, key_index=key_index
        )

    def read_marker(self) -> dict[str, Any] | None:
        """The store's marker (format, id of its key, where its key is kept), if any."""
        return read_marker(self.directory)

    def write_marker(self, **fields: Any) -> None:
        """Record (merged over the existing marker) which key wrote this store and where it is."""
        marker = read_marker(self.directory) or {}
        marker.update(fields)
        marker["format"] = FORMAT
        marker.setdefault("key_id", self._keys[0].id)
        try:
            private_folder(self.directory, what="token store folder")
        except OSError as exc:
            raise _storage_error("create the folder", self.directory, exc, folder=True) from exc
        data = json.dumps(marker, indent=1, sort_keys=True).encode() + b"\n"
        write_file_atomically(self.directory / MARKER, data, sync_dir=self.durable)

    def _check_marker(self) -> None:
        """Refuse a key that did not write this store, before any entry is moved aside."""
        marker = read_marker(self.directory)
        if marker is None:
            return
        expected = marker.get("key_id")
        if isinstance(expected, str) and expected not in self.key_ids:
            kept = marker.get("key_kept_in") or "an unknown place"
            raise StorageError(
                f"the key given for the token store at {self.directory} is not the key its "
                f"entries were written with (that key, id {expected}, was kept in {kept}). "
                "Restore that key (unlock the keyring, or set MCP_CLIENT_AUTH_KEY to it), or "
                f"move the folder {self.directory} away to start over (you will log in again)."
            )

    # --- reading -------------------------------------------------------------------------

    def _read_paths(self, key: str, collection: str) -> tuple[str, ...]:
        """Where ``key`` may be, newest key's name first; cached (names cost an HMAC each)."""
        paths = self._paths.get((collection, key))
        if paths is None:
            if len(self._paths) > 4096:
                self._paths.clear()
            paths = tuple(str(self._path(key, collection, i)) for i in range(len(self._keys)))
            self._paths[(collection, key)] = paths
        return paths

    def _load(self, key: str, collection: str) -> dict[str, Any] | None:
        """The decoded entry for ``key``, or None (absent, expired or unreadable)."""
        for path in self._read_paths(key, collection):
            try:
                data = read_private_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _storage_error("read", Path(path), exc) from exc
            entry = self._decode(path, data, expect=(collection, key))
            if entry is None:
                return None
            expires = entry.get("expires_at")
            if isinstance(expires, (int, float)) and expires <= time.time():
                return None
            return entry
        return None

    def _decode(
        self,
        path: str | Path,
        data: bytes,
        *,
        expect: tuple[str, str] | None,
        value: bool = True,
        named_by: int | None = None,
    ) -> dict[str, Any] | None:
        """The entry in ``data`` (``value`` left out unless asked), or None once set aside.

        The plain text is a header line (collection, key, times) then the value's JSON, so
        listing parses only the small header: Fernet's MAC already proves the rest intact.
        ``expect``: the (collection, key) the file's name is for; else ``named_by``: the index
        of the key that named the file's folder, to check its name against its header (a
        listing sets aside exactly what :meth:`get` would).
        """
        fernet = self._multi_fernet()
        try:
            plain = fernet.decrypt(data)
        except self._invalid_token:
            self._set_aside(path, data, "it cannot be decrypted with this store's key")
            return None
        head, newline, body = plain.partition(b"\n")
        try:
            entry = json.loads(head)
            parsed = json.loads(body) if value and newline else None
        except ValueError:  # includes UnicodeDecodeError
            self._set_aside(path, data, "its content is not valid JSON")
            return None
        if (
            not newline
            or not isinstance(entry, dict)
            or not isinstance(entry.get("key"), str)
            or not isinstance(entry.get("collection"), str)
            or (value and not isinstance(parsed, dict))
        ):
            self._set_aside(path, data, "its content is not an entry")
            return None
        if expect is not None:
            mismatch = (entry["collection"], entry["key"]) != expect
        elif named_by is not None:
            name = self.entry_name(entry["key"], entry["collection"], key_index=named_by)
            mismatch = os.path.basename(path) != name
        else:
            mismatch = False
        if mismatch:
            self._set_aside(path, data, "it holds a different entry than its name says")
            return None
        if value:
            entry["value"] = parsed
        return entry

    def _set_aside(self, path: str | Path, data: bytes, why: str) -> None:
        """Move an unreadable entry aside (never delete it) and say so, naming the file."""
        path = Path(path)
        try:
            if read_private_file(path) != data:
                return  # replaced meanwhile by a writer: the new entry is not ours to move
        except FileNotFoundError:
            return
        except OSError:
            pass
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = path.with_name(f"{path.name}{UNREADABLE}{stamp}-{secrets.token_hex(2)}")
        try:
            os.replace(path, aside)
        except OSError as exc:
            logger.warning(
                "ignoring the unreadable token store entry %s (%s); it could not be moved "
                "aside (%s)",
                path,
                why,
                exc.strerror,
            )
        else:
            report_set_aside(SetAside(f"token store entry {path}", aside.name, why))
        self.unreadable_seen += 1

    def unreadable(self) -> list[Path]:
        """Every entry ever moved aside as unreadable (what ``doctor`` reports)."""
        root = self.directory / ENTRIES
        found: list[Path] = []
        try:
            folders = list(os.scandir(root))
        except FileNotFoundError:
            return found
        for folder in folders:
            if folder.is_dir(follow_symlinks=False):
                found.extend(Path(e.path) for e in os.scandir(folder.path) if UNREADABLE in e.name)
        return sorted(found)

    # --- writing -------------------------------------------------------------------------

    def _encode(
        self, key: str, value: Mapping[str, Any], collection: str, ttl: SupportsFloat | None
    ) -> bytes:
        return self._multi_fernet().encrypt(entry_plaintext(key, value, collection, ttl))

    def _write(self, key: str, token: bytes, collection: str) -> None:
        path = self._path(key, collection)
        if path.parent not in self._made:
            self._make_folder(path.parent)
        try:
            write_file_atomically(path, token, sync_dir=self.durable)
        except StorageError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise
            self._make_folder(path.parent)  # the folder was removed under us: make it again
            write_file_atomically(path, token, sync_dir=self.durable)
        for index in range(1, len(self._keys)):  # the same entry under an older key's name
            self._unlink(self._path(key, collection, index))

    def _make_folder(self, folder: Path) -> None:
        try:
            private_folder(folder, what="token store folder")
        except OSError as exc:
            raise _storage_error("create the folder", folder, exc, folder=True) from exc
        self._made.add(folder)

    def _unlink(self, path: Path) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _storage_error("delete", path, exc) from exc
        return True

    # --- AsyncKeyValue -------------------------------------------------------------------

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        entry = self._load(key, collection or self.default_collection)
        return None if entry is None else entry["value"]

    async def ttl(
        self, key: str, *, collection: str | None = None
    ) -> tuple[dict[str, Any] | None, float | None]:
        entry = self._load(key, collection or self.default_collection)
        if entry is None:
            return None, None
        expires = entry.get("expires_at")
        remaining = None if expires is None else max(0.0, float(expires) - time.time())
        return entry["value"], remaining

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        coll = collection or self.default_collection
        self._write(key, self._encode(key, value, coll, ttl), coll)

    async def set_aside(
        self, key: str, *, collection: str, expected: Mapping[str, Any], why: str
    ) -> bool:
        """Move ``key``'s entry aside if its value is still ``expected``; True when moved.

        For a value that decrypts but is not a record this version reads (found by
        ``TokenStore``, one level up): renamed exactly as an undecryptable entry, so ``doctor``
        counts and lists it. A value replaced meanwhile by a writer is left alone.
        """
        return self._set_aside_value(key, collection, expected, why)

    def _set_aside_value(
        self, key: str, collection: str, expected: Mapping[str, Any], why: str
    ) -> bool:
        for path in self._read_paths(key, collection):
            try:
                data = read_private_file(path)
            except FileNotFoundError:
                continue
            entry = self._decode(path, data, expect=(collection, key))
            if entry is None:
                return True  # unreadable after all: just set aside by _decode itself
            if entry.get("value") != dict(expected):
                return False  # replaced meanwhile by a writer
            self._set_aside(path, data, why)
            return True
        return False

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        coll = collection or self.default_collection
        found = False
        for index in range(len(self._keys)):
            found = self._unlink(self._path(key, coll, index)) or found
        return found

    async def keys(self, collection: str | None = None, *, limit: int | None = None) -> list[str]:
        """Every live key in ``collection`` (decrypts each entry: the names are hashes)."""
        found: list[str] = []
        for key, _entry in self._live(collection or self.default_collection, value=False):
            found.append(key)
            if limit is not None and len(found) >= limit:
                break
        return found

    async def items(self, collection: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every live entry of ``collection`` as (key, value), each file read and decrypted once.

        What :meth:`keys` then ``get_many`` give, in one pass instead of two (a listing has to
        decrypt every entry anyway: the names are hashes).
        """
        coll = collection or self.default_collection
        return [(key, entry["value"]) for key, entry in self._live(coll, value=True)]

    def _live(self, collection: str, *, value: bool) -> list[tuple[str, dict[str, Any]]]:
        """(key, entry) of each key in ``collection``, as :meth:`get` finds it: the newest
        key's file first, an expired entry hiding the older ones."""
        seen: set[str] = set()
        live: list[tuple[str, dict[str, Any]]] = []
        now = time.time()
        for _path, entry in self._scan(collection, value=value):
            key = entry["key"]
            if key in seen:
                continue
            seen.add(key)
            expires = entry.get("expires_at")
            if not (isinstance(expires, (int, float)) and expires <= now):
                live.append((key, entry))
        return live

    def _scan(self, collection: str, *, value: bool = True) -> list[tuple[str, dict[str, Any]]]:
        """Every entry of ``collection``, newest key's folder first (file names checked)."""
        folders = [(self._collection_dir(collection, i), i) for i in range(len(self._keys))]
        return [
            (path, entry)
            for path, entry in self._read_all(folders, value=value)
            if entry["collection"] == collection
        ]

    def _read_all(
        self, folders: Sequence[tuple[Path, int | None]], *, value: bool = True
    ) -> list[tuple[str, dict[str, Any]]]:
        """Decode every entry file in ``folders`` (unreadable ones are moved aside).

        Each folder comes with the index of the key that names its files, to check each
        file's name against its header, or None (a folder of unknown naming: no check).
        """
        result: list[tuple[str, dict[str, Any]]] = []
        join = os.path.join
        done: set[Path] = set()
        for folder, named_by in folders:
            if folder in done:
                continue
            done.add(folder)
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _storage_error("list", folder, exc, folder=True) from exc
            for name in names:
                if len(name) != _NAME_LEN or not _HEX.issuperset(name):
                    continue  # temp files, entries moved aside
                path = join(folder, name)
                try:
                    data = read_private_file(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise _storage_error("read", Path(path), exc) from exc
                entry = self._decode(path, data, expect=None, value=value, named_by=named_by)
                if entry is not None:
                    result.append((path, entry))
        return result

    async def cull(self, collection: str | None = None) -> int:
        """Delete expired entries of ``collection``; returns how many."""
        coll = collection or self.default_collection
        now = time.time()
        gone = 0
        for path, entry in self._scan(coll, value=False):
            expires = entry.get("expires_at")
            if isinstance(expires, (int, float)) and expires <= now:
                gone += self._unlink(Path(path))
        return gone

    async def rotate(self) -> int:
        """Re-encrypt every entry with the newest key, under its name; returns how many.

        Afterwards the marker names the newest key, and the older keys can be dropped.
        """
        try:
            folders = [
                (Path(e.path), None)
                for e in os.scandir(self.directory / ENTRIES)
                if e.is_dir(follow_symlinks=False)
            ]
        except FileNotFoundError:
            folders = []
        count = 0
        for path, entry in self._read_all(folders):
            expires = entry.get("expires_at")
            if isinstance(expires, (int, float)) and expires <= time.time():
                self._unlink(Path(path))
                continue
            ttl = None if expires is None else float(expires) - time.time()
            coll = entry["collection"]
            self._write(entry["key"], self._encode(entry["key"], entry["value"], coll, ttl), coll)
            if path != str(self._path(entry["key"], coll)):
                self._unlink(Path(path))
            count += 1
        self.write_marker(key_id=self._keys[0].id)
        return count

    def has_entries(self) -> bool:
        """True when any entry file exists (used to refuse replacing a lost key silently)."""
        return store_has_entries(self.directory)

    def __repr__(self) -> str:
        return f"EncryptedFileStore({str(self.directory)!r}, keys={list(self.key_ids)})"


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
                if len(e.name) == _NAME_LEN:
                    return True
    return False


def folder_key_hash(directory: Path | str) -> str:
    """A stable, non-secret short name for a store folder (used to name its key file)."""
    return hashlib.sha256(os.fsencode(str(directory))).hexdigest()[:24]
