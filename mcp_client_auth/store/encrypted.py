"""Encryption over any py-key-value-aio store: ``TokenStore(EncryptedKeyValue(kv, key=...))``.

``TokenStore(kv)`` keeps records as they are, so over a store of one's own (py-key-value-aio's
``RedisStore``, ``MongoDBStore``, ``MemoryStore``...) the tokens would sit in clear.
:class:`EncryptedKeyValue` wraps such a store the way the disk and Redis stores encrypt:

* each value is a ``MultiFernet`` token of a header line (collection, key, times) and the
  value's JSON, kept as ``{"fernet": token}``, so the key can be rotated;
* the names it is stored under (collection and key) are keyed hashes: the store underneath
  sees neither the tokens nor which servers are used;
* a marker entry records which key wrote the store (its public fingerprint), so a process
  given another key gets a clear error instead of an empty store;
* an entry that cannot be decrypted, or that decrypts to something that is not a record, is
  moved aside (renamed, never deleted), reported by a WARNING, and treated as absent.

No redis, no store framework: this module imports only json, hmac and (at first use)
cryptography. ``TokenStore.redis()`` uses it over its own Redis layer.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, SupportsFloat

from ..errors import StorageError
from .aside import SetAside, aside_name, report_set_aside
from .batch import BatchFromSingle
from .disk import _Key, entry_plaintext, parse_keys
from .keys import Protection
from .names import COLLECTION

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet
    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = ["DEFAULT_PREFIX", "EncryptedKeyValue", "given_keys"]

logger = logging.getLogger("mcp_client_auth.store")

DEFAULT_PREFIX = "mcp-client-auth"
FORMAT = 1
MARKER_KEY = "store"
_NAME_LEN = 40  # hex characters of HMAC-SHA256 kept in a name (160 bits), as on disk
_HEX = frozenset("0123456789abcdef")


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


class EncryptedKeyValue(BatchFromSingle):
    """A py-key-value-aio ``AsyncKeyValue`` that encrypts values and hashes names over ``kv``.

    ``key``: a Fernet key (``Fernet.generate_key()``; several, comma-separated, newest first,
    to rotate: the first encrypts and names new entries, all of them decrypt), 32 raw bytes,
    or a sequence of 32-byte keys. Every process given the same ``kv`` and key shares the
    entries. Entries are stored under the hashed collection ``<prefix>:<hmac(collection)>``
    and key ``<hmac(collection, key)>``; the marker, under collection ``prefix``, key
    ``store``. Listing (what ``TokenStore.records()`` needs) works where ``kv`` can list its
    keys (py-key-value-aio's ``keys()``, at most its page size per collection).

    For instance, tokens in one's own Redis through py-key-value-aio::

        store = TokenStore(EncryptedKeyValue(RedisStore(url=...), key=os.environ["MY_KEY"]))
    """

    def __init__(
        self,
        kv: AsyncKeyValue,
        *,
        key: str | bytes | Sequence[bytes],
        prefix: str = DEFAULT_PREFIX,
        default_collection: str = "default",
    ) -> None:
        self._inner = kv
        self._setup(given_keys(key), prefix, default_collection)

    def _setup(self, keys: Sequence[bytes], prefix: str, default_collection: str) -> None:
        """What every instance holds, whatever it wraps (a subclass may wrap per event loop)."""
        if not keys:
            raise ValueError("EncryptedKeyValue needs at least one key")
        if any(len(k) != 32 for k in keys):
            raise ValueError("store keys are 32 bytes each")
        self.prefix = prefix
        self.default_collection = default_collection
        self._keys = tuple(_Key(k) for k in keys)
        self._fernet: MultiFernet | None = None
        self._invalid_token: type[Exception] = Exception
        self._checked = False
        self.unreadable_seen = 0
        """Entries this process found unreadable and moved aside."""

    # --- what is underneath (a subclass may pick it per event loop) --------------------------

    def inner(self) -> AsyncKeyValue:
        """The store underneath, which holds the encrypted entries."""
        return self._inner

    @property
    def where(self) -> str:
        """The store underneath, as messages name it (never with a password)."""
        return f"the store {type(self._inner).__name__}"

    @property
    def description(self) -> str:
        """What ``TokenStore`` shows as where its records are."""
        return f"encrypted, in {self.where}"

    @property
    def protection(self) -> Protection:
        """The key came from the application (``key=``): it is as safe as the application keeps
        it."""
        return Protection("application", "key=")

    # --- names, marker ---------------------------------------------------------------------

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self._keys)

    def _hash(self, message: bytes, key_index: int = 0) -> str:
        digest = hmac.digest(self._keys[key_index].name_key, message, "sha256")
        return digest.hex()[:_NAME_LEN]

    def collection_name(self, collection: str, key_index: int = 0) -> str:
        digest = self._hash(b"c\0" + collection.encode("utf-8"), key_index)
        return f"{self.prefix}:{digest}"

    def entry_name(self, key: str, collection: str | None = None, *, key_index: int = 0) -> str:
        """The name of an entry underneath: a keyed hash, so it says nothing about the key."""
        coll = collection or self.default_collection
        message = b"e\0" + coll.encode("utf-8") + b"\0" + key.encode("utf-8")
        return self._hash(message, key_index)

    def lock_name(self, resource: str) -> str:
        digest = self._hash(b"l\0" + resource.encode("utf-8"))
        return f"{self.prefix}:lock:{digest}"

    def _names(self, key: str, collection: str) -> list[tuple[str, str]]:
        """(collection, name) of ``key`` under every key, newest first."""
        return [
            (self.collection_name(collection, i), self.entry_name(key, collection, key_index=i))
            for i in range(len(self._keys))
        ]

    async def check_key(self) -> None:
        """Write the marker on first use; refuse a key other than the one it names."""
        if self._checked:
            return
        inner = self.inner()
        found = await inner.get(MARKER_KEY, collection=self.prefix)
        if found is None:
            marker = {"format": FORMAT, "key_id": self._keys[0].id}
            await inner.put(MARKER_KEY, marker, collection=self.prefix)
            found = marker
        self._refuse_other_key(found.get("key_id"), "pass it as EncryptedKeyValue(kv, key=...)")
        self._checked = True

    def _refuse_other_key(self, expected: object, how: str) -> None:
        if isinstance(expected, str) and expected not in self.key_ids:
            raise StorageError(
                f"the key given for the token store in {self.where} is not the key its entries "
                f"were written with (that key has id {expected}; this one {self.key_ids[0]}). "
                f"Every process sharing the store needs the same key: {how}."
            )

    async def _kv(self) -> AsyncKeyValue:
        await self.check_key()
        return self.inner()

    # --- encoding --------------------------------------------------------------------------

    def _multi_fernet(self) -> MultiFernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet

            self._invalid_token = InvalidToken
            self._fernet = MultiFernet([Fernet(k.fernet_key()) for k in self._keys])
        return self._fernet

    def _encode(
        self, key: str, value: Mapping[str, Any], collection: str, ttl: SupportsFloat | None
    ) -> dict[str, Any]:
        token = self._multi_fernet().encrypt(entry_plaintext(key, value, collection, ttl))
        return {"fernet": token.decode("ascii")}

    async def _decode(
        self,
        stored: Mapping[str, Any],
        where: tuple[str, str],
        *,
        expect: tuple[str, str] | None,
        named_by: int | None = None,
    ) -> dict[str, Any] | None:
        """The entry (header fields and ``value``) in ``stored``, or None once set aside.

        ``expect``: the (collection, key) its name is for; else ``named_by``: the index of the
        key that named it, to check its name against its header (a listing sets aside exactly
        what :meth:`get` would).
        """
        token = stored.get("fernet")
        if not isinstance(token, str):
            await self._set_aside(where, stored, "it is not an encrypted entry")
            return None
        try:
            plain = self._multi_fernet().decrypt(token.encode("ascii"))
        except (self._invalid_token, UnicodeEncodeError):
            await self._set_aside(where, stored, "it cannot be decrypted with this store's key")
            return None
        head, newline, body = plain.partition(b"\n")
        try:
            entry = json.loads(head)
            value = json.loads(body) if newline else None
        except ValueError:
            await self._set_aside(where, stored, "its content is not valid JSON")
            return None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("key"), str)
            or not isinstance(entry.get("collection"), str)
            or not isinstance(value, dict)
        ):
            await self._set_aside(where, stored, "its content is not an entry")
            return None
        if expect is not None:
            mismatch = (entry["collection"], entry["key"]) != expect
        elif named_by is not None:
            coll, key = entry["collection"], entry["key"]
            mismatch = where != (
                self.collection_name(coll, named_by),
                self.entry_name(key, coll, key_index=named_by),
            )
        else:
            mismatch = False
        if mismatch:
            await self._set_aside(where, stored, "it holds a different entry than its name says")
            return None
        entry["value"] = value
        return entry

    # --- setting aside -----------------------------------------------------------------------

    async def _move(self, where: tuple[str, str], aside: str, stored: Mapping[str, Any]) -> bool:
        """Rename the entry at ``where`` to ``aside`` if it still holds ``stored``.

        Atomic where the store has ``move_if_unchanged`` (our Redis layer). Elsewhere a copy is
        put, then the entry is read again and deleted only if it still holds ``stored``, so a
        login written during the copy is kept; a small window remains between that read and
        the delete.
        """
        collection, name = where
        inner: Any = self.inner()
        move = getattr(inner, "move_if_unchanged", None)
        if move is not None:  # one transaction where the store has one (our Redis layer)
            moved: bool = await move(name, aside, collection=collection, expected=dict(stored))
            return moved
        if await inner.get(name, collection=collection) != dict(stored):
            return False
        await inner.put(aside, dict(stored), collection=collection)
        if await inner.get(name, collection=collection) != dict(stored):
            return False  # replaced while the copy was put: the copy stays aside, harmless
        await inner.delete(name, collection=collection)
        return True

    async def _set_aside(self, where: tuple[str, str], stored: Mapping[str, Any], why: str) -> None:
        """Rename an unreadable entry (never delete it) and say so, naming it."""
        collection, name = where
        aside = aside_name(name)
        try:
            if not await self._move(where, aside, stored):
                return  # replaced meanwhile by a writer: the new entry is not ours to move
        except Exception as exc:
            logger.warning(
                "ignoring the unreadable token store entry %s::%s in %s (%s); it could not be "
                "moved aside (%s)",
                collection,
                name,
                self.where,
                why,
                exc,
            )
        else:
            entry = f"token store entry {collection}::{name} in {self.where}"
            report_set_aside(SetAside(entry, aside, why))
        self.unreadable_seen += 1

    async def set_aside(
        self, key: str, *, collection: str, expected: Mapping[str, Any], why: str
    ) -> bool:
        """Set aside the entry of ``key`` if it still holds ``expected``: for a value that
        decrypts but that the layer above cannot read (see :mod:`.aside`)."""
        kv = await self._kv()
        for where in self._names(key, collection):
            stored = await kv.get(where[1], collection=where[0])
            if stored is None:
                continue
            entry = await self._decode(stored, where, expect=(collection, key))
            if entry is None:
                return True  # unreadable after all: set aside just now
            if entry["value"] != dict(expected):
                return False  # replaced meanwhile by a writer
            await self._set_aside(where, stored, why)
            return True
        return False

    async def _load(self, key: str, collection: str) -> tuple[dict[str, Any], float | None] | None:
        kv = await self._kv()
        for where in self._names(key, collection):
            stored, ttl = await kv.ttl(where[1], collection=where[0])
            if stored is None:
                continue
            entry = await self._decode(stored, where, expect=(collection, key))
            return None if entry is None else (entry, ttl)
        return None

    # --- AsyncKeyValue -----------------------------------------------------------------------

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        found = await self._load(key, collection or self.default_collection)
        return None if found is None else found[0]["value"]

    async def ttl(
        self, key: str, *, collection: str | None = None
    ) -> tuple[dict[str, Any] | None, float | None]:
        found = await self._load(key, collection or self.default_collection)
        if found is None:
            return None, None
        return found[0]["value"], found[1]

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        coll = collection or self.default_collection
        stored = self._encode(key, value, coll, ttl)
        kv = await self._kv()
        names = self._names(key, coll)
        await kv.put(names[0][1], stored, collection=names[0][0], ttl=ttl)
        for older_collection, older in names[1:]:  # the same entry under an older key's name
            await kv.delete(older, collection=older_collection)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        kv = await self._kv()
        found = False
        for where in self._names(key, collection or self.default_collection):
            found = await kv.delete(where[1], collection=where[0]) or found
        return found

    async def keys(self, collection: str | None = None, *, limit: int | None = None) -> list[str]:
        """Every live key in ``collection`` (decrypts each entry: the names are hashes)."""
        return [key for key, _value in await self._live(collection, limit=limit)]

    async def items(self, collection: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every live entry of ``collection`` as (key, value), each one fetched and decrypted
        once: what :meth:`keys` then ``get_many`` give, in one pass instead of two."""
        return await self._live(collection)

    async def _live(
        self, collection: str | None, *, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """(key, value) of each key in ``collection``, newest key's entry first, as :meth:`get`
        finds it (unreadable entries are set aside)."""
        coll = collection or self.default_collection
        kv: Any = await self._kv()
        if not hasattr(kv, "keys"):
            raise StorageError(f"{self.where} cannot list its entries")
        found: dict[str, dict[str, Any]] = {}
        for index in range(len(self._keys)):
            hashed = self.collection_name(coll, index)
            names = [
                n
                for n in await kv.keys(collection=hashed)
                if len(n) == _NAME_LEN and _HEX.issuperset(n)
            ]
            values = await kv.get_many(names, collection=hashed)
            for name, stored in zip(names, values, strict=True):
                if stored is None:
                    continue  # expired meanwhile
                entry = await self._decode(stored, (hashed, name), expect=None, named_by=index)
                if entry is not None:
                    found.setdefault(entry["key"], entry["value"])
                    if limit is not None and len(found) >= limit:
                        return list(found.items())
        return list(found.items())

    # --- rotation ---------------------------------------------------------------------------

    async def rotate(self, collections: Sequence[str] | None = None) -> int:
        """Move every live entry of ``collections`` under the newest key; returns how many.

        What finishes a rotation (key ``"NEW,OLD"``): each entry still named and encrypted by
        an older key is re-put under the newest one and its old copy removed; then the marker
        names the newest key, so the older keys can be dropped. ``collections`` defaults to
        this store's default collection and ``TokenStore``'s: the names underneath are hashes,
        so a collection that is not named here cannot be found. Idempotent; run it when no
        other process is logging in, as a login written meanwhile under the older key's name
        would stay there.
        """
        kv: Any = await self._kv()
        if not hasattr(kv, "keys"):
            raise StorageError(f"{self.where} cannot list its entries, so it cannot be rotated")
        wanted = collections if collections is not None else (self.default_collection, COLLECTION)
        moved = 0
        for collection in dict.fromkeys(wanted):
            for index in range(1, len(self._keys)):
                moved += await self._rotate_collection(kv, collection, index)
        await self.write_marker()
        return moved

    async def write_marker(self) -> None:
        """Record that the newest key wrote the store (a subclass keeping its marker elsewhere,
        as the Redis store does, overrides this with :meth:`check_key`)."""
        marker = {"format": FORMAT, "key_id": self._keys[0].id}
        await self.inner().put(MARKER_KEY, marker, collection=self.prefix)

    async def _rotate_collection(self, kv: Any, collection: str, index: int) -> int:
        """Move the entries of ``collection`` named by the key at ``index`` to the newest key.

        An entry whose newest-key copy already exists is only removed: that copy is what
        :meth:`get` reads. An expired entry is removed, an unreadable one set aside.
        """
        hashed, target = self.collection_name(collection, index), self.collection_name(collection)
        names = [
            n
            for n in await kv.keys(collection=hashed)
            if len(n) == _NAME_LEN and _HEX.issuperset(n)
        ]
        moved = 0
        for name in names:
            stored = await kv.get(name, collection=hashed)
            if stored is None:
                continue  # expired or removed meanwhile
            entry = await self._decode(stored, (hashed, name), expect=None, named_by=index)
            if entry is None:
                continue  # set aside
            key, expires = entry["key"], entry.get("expires_at")
            ttl = None if expires is None else float(expires) - time.time()
            newest = self.entry_name(key, collection)
            live = ttl is None or ttl > 0
            if live and await kv.get(newest, collection=target) is None:
                encoded = self._encode(key, entry["value"], collection, ttl)
                await kv.put(newest, encoded, collection=target, ttl=ttl)
                moved += 1
            await kv.delete(name, collection=hashed)
        return moved

    def __repr__(self) -> str:
        return f"EncryptedKeyValue({self.where}, keys={list(self.key_ids)})"


if TYPE_CHECKING:  # an AsyncKeyValue, so py-key-value-aio's wrappers compose over it
    _IS_ASYNC_KEY_VALUE: type[AsyncKeyValue] = EncryptedKeyValue
