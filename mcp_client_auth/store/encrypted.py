"""Encryption over any plain store: ``TokenStore(EncryptedKeyValue(kv, key=...))``.

``TokenStore(kv)`` keeps records as they are, so over a store of one's own (py-key-value-aio's
``RedisStore``, ``MongoDBStore``, ``MemoryStore``...) the tokens would sit in clear.
:class:`EncryptedKeyValue` is the one place that encrypts, whatever is underneath: files in a
folder (``TokenStore.default()``), Redis (``TokenStore.redis()``) or such a store:

* each entry is encrypted and named as :mod:`.codec` says (keyed-hash names, a ``MultiFernet``
  token of a header line and the value), so the key can be rotated and the store underneath
  sees neither the tokens nor which servers are used;
* a marker records which key wrote the store (its public fingerprint), so a process given
  another key gets a clear error instead of an empty store;
* an entry that cannot be decrypted, or that decrypts to something that is not a record, is
  moved aside (renamed, never deleted), reported (see :mod:`.aside`), and treated as absent.

What is underneath is an :class:`~.capabilities.EntryLayer`: this module knows no file, no
Redis and no store framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, SupportsFloat

from ..errors import StorageError
from .aside import SetAside, aside_name, logger, report_set_aside
from .batch import BatchFromSingle
from .capabilities import ListsFolders
from .codec import FORMAT, Codec, Unreadable, expired, given_keys, is_entry_name, remaining
from .names import COLLECTION, DEFAULT_PREFIX
from .protection import Protection

if TYPE_CHECKING:
    from key_value.aio.protocols.key_value import AsyncKeyValue

    from .capabilities import EntryLayer

__all__ = ["DEFAULT_PREFIX", "EncryptedKeyValue"]

Where = tuple[str, str]  # (hashed collection, hashed name)


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

    prefix = DEFAULT_PREFIX

    def __init__(
        self,
        kv: AsyncKeyValue,
        *,
        key: str | bytes | Sequence[bytes],
        prefix: str = DEFAULT_PREFIX,
        default_collection: str = "default",
    ) -> None:
        from .kv_layer import KeyValueLayer  # not on the disk store's path

        self.prefix = prefix
        self.open(KeyValueLayer(kv, prefix), given_keys(key), default_collection)
        self.protection: Protection | None = Protection("application", "key=")

    def open(self, layer: EntryLayer, keys: Sequence[bytes], default_collection: str) -> None:
        """Encrypt with ``keys`` over ``layer`` (what each constructor does)."""
        self.layer = layer
        self.codec = Codec(keys)
        self._cache: dict[tuple[str, str], tuple[Where, ...]] = {}
        self.default_collection = default_collection
        self.never_suspends = layer.never_suspends
        self.protection = None
        self._checked = False
        self.unreadable_seen = 0
        """Entries this process found unreadable and moved aside."""

    def use_keys(self, keys: Sequence[bytes]) -> None:
        """Encrypt and name entries with ``keys`` from now on: for a new store, before its
        first write, when another process kept its key first (see ``default.py``)."""
        self.codec = Codec(keys)
        self._cache.clear()

    # --- names, marker ---------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The store underneath, as messages name it (never with a password)."""
        return self.layer.where

    @property
    def description(self) -> str:
        """What ``TokenStore`` shows as where its records are."""
        return f"encrypted, in {self.where}"

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self.codec.key_ids

    def entry_name(self, key: str, collection: str | None = None, *, key_index: int = 0) -> str:
        """The name of an entry underneath: a keyed hash, so it says nothing about the key."""
        return self.codec.entry_name(key, collection or self.default_collection, key_index)

    def collection_name(self, collection: str, key_index: int = 0) -> str:
        """Where the entries of ``collection`` are underneath, as the key at ``key_index``
        names them (the name of a collection, or of a folder)."""
        return self.layer.collection(self.codec.collection_name(collection, key_index))

    def lock_name(self, resource: str) -> str:
        """The name of the lock on ``resource`` where locks are kept beside the entries
        (Redis): a keyed hash, the same on every host that has the key."""
        return f"{self.prefix}:lock:{self.codec.lock_name(resource)}"

    def _names(self, key: str, collection: str) -> tuple[Where, ...]:
        """Where ``key`` may be, under every key, newest first; cached (an HMAC each)."""
        names = self._cache.get((collection, key))
        if names is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            codec = self.codec
            names = tuple(
                (codec.collection_name(collection, i), codec.entry_name(key, collection, i))
                for i in range(len(codec))
            )
            self._cache[(collection, key)] = names
        return names

    def refuse_other_key(self, expected: object, kept_in: object = None) -> None:
        """A :class:`StorageError` unless ``expected`` (a marker's key id) is one of ours;
        ``kept_in``: where the marker says that key was kept, for the error to name it."""
        if isinstance(expected, str) and expected not in self.key_ids:
            where_kept = f", was kept in {kept_in}" if isinstance(kept_in, str) else ""
            raise StorageError(
                f"the key given for the token store in {self.where} is not the key its entries "
                f"were written with (that key, id {expected}{where_kept}; this one "
                f"{self.key_ids[0]}). {self.layer.key_advice}."
            )

    async def check_key(self) -> None:
        """Write the marker on first use; refuse a key other than the one it names."""
        if self._checked:
            return
        found = await self.layer.claim_marker({"format": FORMAT, "key_id": self.key_ids[0]})
        if found is not None:
            self.refuse_other_key(found.get("key_id"))
        self._checked = True

    async def _layer(self) -> EntryLayer:
        await self.check_key()
        return self.layer

    # --- decoding and setting aside --------------------------------------------------------

    async def _decode(
        self,
        stored: Any,
        where: Where,
        *,
        expect: Where | None,
        named_by: int | None = None,
        value: bool = True,
    ) -> dict[str, Any] | None:
        """The entry in ``stored`` (header fields, and ``value`` unless told not to: a listing
        of keys parses the small header alone), or None once set aside.

        ``expect``: the (collection, key) its name is for; else ``named_by``: the index of the
        key that named it, to check its name against its header (a listing sets aside exactly
        what :meth:`get` would); neither: a folder found by listing, named by any key.
        """
        token = self.layer.token(stored)
        try:
            if token is None:
                raise Unreadable("it is not an encrypted entry")
            entry = self.codec.decrypt(token, value=value)
            collection, key = entry["collection"], entry["key"]
            if expect is not None:
                mismatch = (collection, key) != expect
            elif named_by is not None:
                codec = self.codec
                mismatch = where != (
                    codec.collection_name(collection, named_by),
                    codec.entry_name(key, collection, named_by),
                )
            else:
                mismatch = False
            if mismatch:
                raise Unreadable("it holds a different entry than its name says")
        except Unreadable as exc:
            await self._set_aside(where, stored, str(exc))
            return None
        return entry

    async def _set_aside(self, where: Where, stored: Any, why: str) -> None:
        """Rename an unreadable entry (never delete it) and say so, naming it."""
        folder, name = where
        aside = aside_name(name)
        entry = f"token store entry {self.layer.describe(folder, name)}"
        try:
            if not await self.layer.move_if_unchanged(folder, name, aside, stored):
                return  # replaced meanwhile by a writer: the new entry is not ours to move
        except Exception as exc:
            reason = exc.strerror if isinstance(exc, OSError) else exc
            logger.warning(
                "ignoring the unreadable %s (%s); it could not be moved aside (%s)",
                entry,
                why,
                reason,
            )
        else:
            report_set_aside(SetAside(entry, aside, why))
        self.unreadable_seen += 1

    async def set_aside(
        self, key: str, *, collection: str, expected: Mapping[str, Any], why: str
    ) -> bool:
        """Set aside the entry of ``key`` if it still holds ``expected``: for a value that
        decrypts but that the layer above cannot read (see :mod:`.aside`)."""
        layer = await self._layer()
        for where in self._names(key, collection):
            stored = await layer.get(*where)
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

    # --- AsyncKeyValue -----------------------------------------------------------------------

    async def _load(self, key: str, collection: str) -> dict[str, Any] | None:
        """The decoded entry for ``key``, or None (absent, expired or unreadable)."""
        layer = await self._layer()
        for where in self._names(key, collection):
            stored = await layer.get(*where)
            if stored is None:
                continue
            entry = await self._decode(stored, where, expect=(collection, key))
            return None if entry is None or expired(entry) else entry
        return None

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        entry = await self._load(key, collection or self.default_collection)
        return None if entry is None else entry["value"]

    async def ttl(
        self, key: str, *, collection: str | None = None
    ) -> tuple[dict[str, Any] | None, float | None]:
        entry = await self._load(key, collection or self.default_collection)
        if entry is None:
            return None, None
        left = remaining(entry)
        return entry["value"], None if left is None else max(0.0, left)

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        coll = collection or self.default_collection
        token = self.codec.encrypt(key, value, coll, ttl)
        layer = await self._layer()
        names = self._names(key, coll)
        seconds = None if ttl is None else float(ttl)
        await layer.put(*names[0], layer.wrap(token), ttl=seconds)
        for older in names[1:]:  # the same entry under an older key's name
            await layer.delete(*older)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        layer = await self._layer()
        found = False
        for where in self._names(key, collection or self.default_collection):
            found = await layer.delete(*where) or found
        return found

    async def keys(self, collection: str | None = None, *, limit: int | None = None) -> list[str]:
        """Every live key in ``collection`` (decrypts each entry: the names are hashes)."""
        live = await self._live(collection, limit=limit, value=False)
        return [key for key, _value in live]

    async def items(self, collection: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every live entry of ``collection`` as (key, value), each one fetched and decrypted
        once: what :meth:`keys` then ``get_many`` give, in one pass instead of two."""
        return await self._live(collection)

    async def _entries(
        self, folder: str, named_by: int | None, *, value: bool = True
    ) -> list[tuple[str, Any, dict[str, Any]]]:
        """(name, stored, entry) of every readable entry in ``folder`` (others set aside)."""
        layer = await self._layer()
        names = [n for n in await layer.names(folder) if is_entry_name(n)]
        found = []
        for name, stored in zip(names, await layer.get_many(folder, names), strict=True):
            if stored is None:
                continue  # removed or expired meanwhile
            where = (folder, name)
            entry = await self._decode(stored, where, expect=None, named_by=named_by, value=value)
            if entry is not None:
                found.append((name, stored, entry))
        return found

    async def _live(
        self, collection: str | None, *, limit: int | None = None, value: bool = True
    ) -> list[tuple[str, dict[str, Any]]]:
        """(key, value) of each key in ``collection``, newest key's entry first, as :meth:`get`
        finds it: an expired entry hides the older ones."""
        coll = collection or self.default_collection
        seen: set[str] = set()
        live: list[tuple[str, dict[str, Any]]] = []
        for index in range(len(self.codec)):
            folder = self.codec.collection_name(coll, index)
            for _name, _stored, entry in await self._entries(folder, index, value=value):
                key = entry["key"]
                if key in seen:
                    continue
                seen.add(key)
                if not expired(entry):
                    live.append((key, entry.get("value") or {}))
                    if limit is not None and len(live) >= limit:
                        return live
        return live

    async def cull(self, collection: str | None = None) -> int:
        """Delete expired entries of ``collection``; returns how many."""
        coll = collection or self.default_collection
        gone = 0
        for index in range(len(self.codec)):
            folder = self.codec.collection_name(coll, index)
            for name, _stored, entry in await self._entries(folder, index, value=False):
                if expired(entry):
                    gone += await self.layer.delete(folder, name)
        return gone

    # --- rotation ---------------------------------------------------------------------------

    async def rotate(self, collections: Sequence[str] | None = None) -> int:
        """Move every live entry under the newest key; returns how many were (re)written.

        What finishes a rotation (key ``"NEW,OLD"``): each entry still named and encrypted by
        an older key is put under the newest one and its old copy removed (a copy under the
        newest name already is what :meth:`get` reads: the old one is only removed); then the
        marker names the newest key, so the older keys can be dropped. Where the layer lists
        every collection (files in a folder) and none are named, every entry found is
        re-encrypted; elsewhere ``collections`` defaults to this store's default collection
        and ``TokenStore``'s: the names underneath are hashes, so a collection that is not
        named cannot be found. Idempotent; run it when no other process is logging in, as a
        login written meanwhile under an older key's name would stay there.
        """
        layer = await self._layer()
        codec = self.codec
        sources: list[tuple[str, int | None]]
        if collections is None and isinstance(layer, ListsFolders):
            sources = [(folder, None) for folder in await layer.folders()]
        else:
            wanted = (self.default_collection, COLLECTION) if collections is None else collections
            sources = [
                (codec.collection_name(c, i), i)
                for c in dict.fromkeys(wanted)
                for i in range(1, len(codec))
            ]
        found = [  # all read first: an entry moved to the newest key's folder is not seen twice
            ((folder, name), entry)
            for folder, named_by in sources
            for name, _stored, entry in await self._entries(folder, named_by)
        ]
        moved = 0
        for where, entry in found:
            moved += await self._rotate_entry(where, entry)
        await layer.write_marker({"key_id": self.key_ids[0]})
        return moved

    async def _rotate_entry(self, where: Where, entry: dict[str, Any]) -> int:
        """Put one entry under the newest key and remove its old copy; 1 when (re)written."""
        layer, codec = self.layer, self.codec
        coll, key = entry["collection"], entry["key"]
        newest = (codec.collection_name(coll), codec.entry_name(key, coll))
        if expired(entry):
            await layer.delete(*where)
            return 0
        if where != newest and await layer.get(*newest) is not None:
            await layer.delete(*where)  # the newest copy is the one read
            return 0
        ttl = remaining(entry)
        token = codec.encrypt(key, entry["value"], coll, ttl)
        await layer.put(*newest, layer.wrap(token), ttl=ttl)
        if where != newest:
            await layer.delete(*where)
        return 1

    def __repr__(self) -> str:
        return f"EncryptedKeyValue({self.where}, keys={list(self.key_ids)})"


if TYPE_CHECKING:  # an AsyncKeyValue, so py-key-value-aio's wrappers compose over it
    _IS_ASYNC_KEY_VALUE: type[AsyncKeyValue] = EncryptedKeyValue
