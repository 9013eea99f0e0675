"""The store's encryption format: keys, hashed names and entries, wherever they are kept.

Every encrypted store (files on disk, Redis, a py-key-value-aio store of one's own) keeps its
entries in this one format, so that a key works the same everywhere and one class
(:class:`~.encrypted.EncryptedKeyValue`) does the encrypting over any of them:

* a store key is 32 bytes; its text form is a Fernet key (url-safe base64), several of them
  comma-separated (or one a line, ``#`` starting a comment line), newest first, to rotate;
* from each key, sub-keys are derived for one purpose each (names, encryption, a public id),
  so the name key and the encryption key never coincide;
* an entry is named by a keyed hash of (collection, key), so a listing of the store says
  nothing about which servers are used; the key itself lives only inside the encrypted entry;
* an entry's content is a ``MultiFernet`` token of a one-line JSON header (key, collection,
  times) then the value's JSON: a listing parses the small header alone, and Fernet's MAC
  already proves the rest intact.

No I/O here. ``cryptography`` is imported at the first encryption or decryption, not with this
module, so that ``import mcp_client_auth`` stays light.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, SupportsFloat

from ..errors import StorageError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = [
    "FORMAT",
    "NAME_LEN",
    "Codec",
    "Unreadable",
    "entry_plaintext",
    "expired",
    "format_key",
    "given_keys",
    "is_entry_name",
    "key_id",
    "parse_keys",
    "remaining",
]

FORMAT = 1
"""The version of the format, recorded in every store's marker."""
NAME_LEN = 40
"""Hex characters of HMAC-SHA256 kept in a name (160 bits)."""
_HEX = frozenset("0123456789abcdef")


def _derive(master: bytes, label: bytes) -> bytes:
    """A sub-key for one purpose, so the name key and the encryption key never coincide."""
    return hmac.digest(master, b"mcp-client-auth/v1/" + label, "sha256")


def key_id(master: bytes) -> str:
    """A public fingerprint of a store key: tells keys apart without revealing them."""
    return _derive(master, b"key-id").hex()[:16]


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is an entry's hashed name (not a temp file, not an entry set aside)."""
    return len(name) == NAME_LEN and _HEX.issuperset(name)


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


def given_keys(key: str | bytes | Sequence[bytes]) -> tuple[bytes, ...]:
    """Store keys from what a caller passes: Fernet keys (text, comma-separated, newest
    first), 32 raw bytes, or a sequence of 32-byte keys. Never echoed in an error."""
    if isinstance(key, bytes):
        if len(key) == 32:
            return (key,)
        try:
            key = key.decode("ascii")
        except UnicodeDecodeError:
            raise StorageError(
                "key= holds neither 32 raw bytes nor a Fernet key (url-safe base64 of 32 bytes)"
            ) from None
    if isinstance(key, str):
        return parse_keys(key, source="key=")
    keys = tuple(key)
    if not keys or any(not isinstance(k, bytes) or len(k) != 32 for k in keys):
        raise StorageError("key= holds a sequence that is not of 32-byte keys")
    return keys


def entry_plaintext(
    key: str, value: Mapping[str, Any], collection: str, ttl: SupportsFloat | None
) -> bytes:
    """What an entry encrypts: a one-line JSON header (key, collection, times), then the value.

    Compact JSON escapes every newline, so the first ``b"\\n"`` ends the header and a listing
    can parse the header alone.
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


class Unreadable(Exception):
    """A stored entry that is not one this key can read; the message says why."""


class Codec:
    """The keys of one store (newest first) and everything derived from them. Never printed.

    The first key encrypts and names new entries; every key decrypts, and names where an entry
    written under it is found.
    """

    __slots__ = ("_fernet", "_invalid", "_masters", "_name_keys", "key_ids")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a store needs at least one key")
        if any(len(k) != 32 for k in keys):
            raise ValueError("store keys are 32 bytes each")
        self._masters = tuple(keys)
        self._name_keys = tuple(_derive(k, b"names") for k in keys)
        self.key_ids = tuple(key_id(k) for k in keys)
        self._fernet: MultiFernet | None = None
        self._invalid: type[Exception] = Exception

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The store keys themselves, newest first (for keeping them, never for showing)."""
        return self._masters

    def __len__(self) -> int:
        return len(self._masters)

    # --- names ---------------------------------------------------------------------------------

    def _hash(self, message: bytes, key_index: int) -> str:
        digest = hmac.digest(self._name_keys[key_index], message, "sha256")
        return digest.hex()[:NAME_LEN]

    def collection_name(self, collection: str, key_index: int = 0) -> str:
        """The hashed name of ``collection``, as the key at ``key_index`` names it."""
        return self._hash(b"c\0" + collection.encode("utf-8"), key_index)

    def entry_name(self, key: str, collection: str, key_index: int = 0) -> str:
        """The hashed name of ``key`` in ``collection``: says nothing about the key."""
        message = b"e\0" + collection.encode("utf-8") + b"\0" + key.encode("utf-8")
        return self._hash(message, key_index)

    def lock_name(self, resource: str) -> str:
        """The hashed name of the lock on ``resource`` (where locks are kept by name)."""
        return self._hash(b"l\0" + resource.encode("utf-8"), 0)

    # --- content -------------------------------------------------------------------------------

    def _multi_fernet(self) -> MultiFernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet

            self._invalid = InvalidToken
            self._fernet = MultiFernet(
                [Fernet(base64.urlsafe_b64encode(_derive(k, b"fernet"))) for k in self._masters]
            )
        return self._fernet

    def encrypt(
        self, key: str, value: Mapping[str, Any], collection: str, ttl: SupportsFloat | None
    ) -> bytes:
        """The encrypted entry (a Fernet token) for ``key`` in ``collection``."""
        return self._multi_fernet().encrypt(entry_plaintext(key, value, collection, ttl))

    def encrypt_plain(self, plain: bytes) -> bytes:
        """``plain`` encrypted as an entry would be, whatever it holds (tests of odd content)."""
        return self._multi_fernet().encrypt(plain)

    def decrypt(self, token: bytes, *, value: bool = True) -> dict[str, Any]:
        """The entry in ``token``: its header fields, and its ``value`` unless ``value=False``.

        Raises :class:`Unreadable` saying why when it is not an entry this store's keys read.
        """
        fernet = self._multi_fernet()
        try:
            plain = fernet.decrypt(token)
        except self._invalid:
            raise Unreadable("it cannot be decrypted with this store's key") from None
        head, newline, body = plain.partition(b"\n")
        try:
            entry = json.loads(head)
            parsed = json.loads(body) if value and newline else None
        except ValueError:  # includes UnicodeDecodeError
            raise Unreadable("its content is not valid JSON") from None
        if (
            not newline
            or not isinstance(entry, dict)
            or not isinstance(entry.get("key"), str)
            or not isinstance(entry.get("collection"), str)
            or (value and not isinstance(parsed, dict))
        ):
            raise Unreadable("its content is not an entry")
        if value:
            entry["value"] = parsed
        return entry

    def __repr__(self) -> str:
        return f"<store keys {list(self.key_ids)}>"


def expired(entry: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether a decrypted entry's own expiry has passed."""
    expires = entry.get("expires_at")
    return isinstance(expires, (int, float)) and expires <= (time.time() if now is None else now)


def remaining(entry: Mapping[str, Any]) -> float | None:
    """Seconds left before a decrypted entry expires (None: it never does)."""
    expires = entry.get("expires_at")
    return None if expires is None else float(expires) - time.time()
