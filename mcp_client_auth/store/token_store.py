"""TokenStore: the records of every protected resource, over a py-key-value-aio store.

One record per protected resource (:class:`~mcp_client_auth.tokens.ServerRecord`), keyed by
its canonical URL. The key-value store underneath is swappable (memory, the encrypted disk
store, Redis); this class adds the record model, a clear error for an unreadable record, and
the cross-process lock that keeps two processes from refreshing the same token at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from ..tokens import ServerRecord
from ..values import Value, set_field
from .aside import SetAside, collect_set_asides, report_set_aside, stop_collecting
from .capabilities import (
    Closes,
    Described,
    InFolder,
    Listing,
    ListsItems,
    ListsUnreadable,
    NeverSuspends,
    Protected,
)
from .names import COLLECTION

if TYPE_CHECKING:
    import os
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from key_value.aio.protocols.key_value import AsyncKeyValue

    from .protection import Protection

__all__ = ["RecordRead", "SetAside", "TokenStore", "failing_as"]

logger = logging.getLogger("mcp_client_auth.store")

LockFactory = Callable[[str], "AbstractAsyncContextManager[None]"]


@contextlib.asynccontextmanager
async def _no_lock(_resource: str) -> AsyncIterator[None]:
    yield


@contextlib.contextmanager
def failing_as(action: str, description: str) -> Iterator[None]:
    """Any error of a store underneath, as a :class:`StorageError` saying ``action`` and where
    (``description``); a :class:`StorageError` passes as it is."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"could not {action} ({description}): {exc}") from exc


class RecordRead(Value):
    """What :meth:`TokenStore.read` found: the record (None when absent or unreadable) and, when
    the stored entry could not be read, where it was moved (:class:`SetAside`) instead. A value: see
    :class:`.protection.Protection`."""

    __slots__ = ("record", "set_aside")
    record: ServerRecord | None
    set_aside: SetAside | None

    def __init__(
        self,
        record: ServerRecord | None,
        set_aside: SetAside | None = None,
    ) -> None:
        set_field(self, "record", record)
        set_field(self, "set_aside", set_aside)


class TokenStore:
    """Where tokens, client registrations and discovered metadata live.

    ``TokenStore(kv)`` wraps any py-key-value-aio ``AsyncKeyValue`` as it is: wrap it in
    :class:`~mcp_client_auth.EncryptedKeyValue` (``TokenStore(EncryptedKeyValue(kv,
    key=...))``) so that it holds neither the tokens nor the server URLs in clear.
    ``TokenStore.memory()``
    forgets on exit; ``TokenStore.default()`` keeps records encrypted on disk;
    ``TokenStore.redis(url)`` keeps them encrypted in Redis, shared by a fleet of hosts.
    """

    #: The folder of a :meth:`default` store (what ``mcp-client-auth --store`` takes);
    #: ``None`` for any other store.
    folder: Path | None = None

    def __init__(
        self,
        kv: AsyncKeyValue,
        *,
        collection: str = COLLECTION,
        lock: LockFactory | None = None,
        description: str | None = None,
        protection: Protection | None = None,
    ) -> None:
        self._kv = kv
        self._collection = collection
        self._lock_factory: LockFactory = lock or _no_lock
        own = kv.description if isinstance(kv, Described) else None  # what it wraps
        self.description: str = description or (own if isinstance(own, str) else type(kv).__name__)
        self._protection = protection
        self._never_suspends = isinstance(kv, NeverSuspends) and kv.never_suspends is True

    @property
    def never_suspends(self) -> bool:
        """Whether its reads and writes complete without awaiting (the default store's do), so
        that sync code can run them at once, with no event loop."""
        return self._never_suspends

    @classmethod
    def default(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        require_keyring: bool = False,
        lock_timeout: float = 360.0,
    ) -> TokenStore:
        """Encrypted files on disk, the key in the system keyring: what a provider uses by default.

        ``directory``: the argument, else ``$MCP_CLIENT_AUTH_HOME``, else the platform's user
        data folder. Without a working keyring the key goes into a 0600 key file in the user
        config folder (a WARNING says so once per process), or comes from
        ``$MCP_CLIENT_AUTH_KEY``; ``require_keyring=True`` refuses both with a
        :class:`StorageError`. ``lock_timeout`` bounds the wait for another process's refresh
        or login. :attr:`protection` says which protection is in force.
        """
        from .default import open_default

        kv, locks, key = open_default(
            directory, require_keyring=require_keyring, lock_timeout=lock_timeout
        )
        store = cls(
            kv,
            lock=locks,
            description=f"encrypted files in {kv.directory}",
            protection=key.protection,
        )
        store.folder = kv.directory
        return store

    @staticmethod
    def default_directory(directory: str | os.PathLike[str] | None = None) -> Path:
        """The folder :meth:`default` uses for ``directory``, without creating anything.

        ``directory`` if given, else ``$MCP_CLIENT_AUTH_HOME``, else the platform's user data
        folder (``platformdirs.user_data_dir("mcp-client-auth")``, ``~/.local/share/
        mcp-client-auth`` on Linux); always absolute, with symbolic links resolved. For
        showing the user where their tokens are, or passing the same folder to another tool.
        """
        from .default import store_directory

        return store_directory(directory)

    @staticmethod
    def default_exists(directory: str | os.PathLike[str] | None = None) -> bool:
        """Whether :meth:`default` has ever made a store in that folder (as
        :meth:`default_directory` finds it), without creating one.

        :meth:`default` creates the folder and a key on first use; code that only wants to
        read (is anyone logged in?) asks this first, so that a machine that never logged in
        keeps no empty store and no key.
        """
        from .default import store_exists

        return store_exists(directory)

    @staticmethod
    def default_key_file(directory: str | os.PathLike[str] | None = None) -> Path:
        """Where :meth:`default` keeps the key of that folder's store without a keyring.

        A 0600 file in the user config folder, apart from the data (so a copy of the data
        folder does not carry its key), used only when no system keyring works and
        ``$MCP_CLIENT_AUTH_KEY`` is not set. Nothing is created here.
        """
        from .default import store_directory
        from .keys import key_file_path

        return key_file_path(store_directory(directory))

    @staticmethod
    def orphan_key_files() -> list[Path]:
        """Key files (see :meth:`default_key_file`) whose store folder no longer exists: left by
        temporary or moved stores, of no use to any store. ``doctor`` lists them."""
        from .keys import orphan_key_files

        return orphan_key_files()

    @staticmethod
    def remove_orphan_key_files() -> list[Path]:
        """Delete :meth:`orphan_key_files` (``logout --all`` does); return the ones removed."""
        from .keys import remove_orphan_key_files

        return remove_orphan_key_files()

    @staticmethod
    def remove_default_key(directory: str | os.PathLike[str] | None = None) -> None:
        """Forget the key of that folder's store (keyring entry or key file), for a store being
        removed with its folder: what it encrypted can never be read again."""
        from .default import store_directory
        from .keys import remove_key

        remove_key(store_directory(directory))

    @classmethod
    def redis(
        cls,
        url: str,
        *,
        key: str | bytes | None = None,
        require_keyring: bool = False,
        lock_timeout: float = 360.0,
        lock_lease: float = 30.0,
        prefix: str = "mcp-client-auth",
        redis_options: Mapping[str, Any] | None = None,
    ) -> TokenStore:
        """Records in Redis, encrypted, with the refresh and login lock in Redis: for a fleet.

        Every host given the same ``url`` and key shares the logins, and one refresh at a time
        happens across all of them. ``url``: ``redis://[[user]:password@]host:port/db``,
        ``rediss://`` (TLS) or ``unix://`` (its password is never shown). ``key``: the store
        key, a Fernet key (several, comma-separated, newest first, to rotate) or 32 bytes; else
        ``$MCP_CLIENT_AUTH_KEY``; else, as :meth:`default`, the system keyring or a key file
        (fine for one host; a fleet needs the same key on every host). Entries are encrypted
        like the disk store's, under keyed-hash names: Redis sees neither the tokens nor which
        servers are used. ``lock_timeout`` bounds the wait for another process's refresh or
        login; ``lock_lease``: a holder that dies (or loses the network) frees the lock within
        that many seconds. ``redis_options`` go to ``redis.asyncio.Redis.from_url``.

        Needs the ``redis`` extra: ``pip install 'mcp-client-auth[redis]'``.
        """
        try:
            from .redis_store import open_redis
        except ImportError as exc:
            raise StorageError(
                f"TokenStore.redis() needs redis ({exc}): pip install 'mcp-client-auth[redis]'"
            ) from exc

        kv, locks, protection, description = open_redis(
            url,
            key=key,
            require_keyring=require_keyring,
            lock_timeout=lock_timeout,
            lock_lease=lock_lease,
            prefix=prefix,
            options=redis_options,
        )
        return cls(kv, lock=locks, description=description, protection=protection)

    @classmethod
    def memory(cls) -> TokenStore:
        """A store that lives only as long as this process."""
        from key_value.aio.stores.memory import MemoryStore

        return cls(MemoryStore(), description="in memory (forgotten on exit)")

    @property
    def kv(self) -> AsyncKeyValue:
        """The py-key-value-aio store underneath, for another OAuth client to keep its tokens in.

        FastMCP's ``OAuth(url, token_storage=TokenStore.default().kv)`` gets encrypted files
        under hashed names, the key in the system keyring; ``TokenStore.redis(...).kv`` gets
        the same in Redis. Whatever it writes stays in its own collections, apart from this
        store's records. It is the store itself, not a copy: ``rotate()`` where it has one.
        """
        return self._kv

    @property
    def protection(self) -> Protection:
        """Where the key protecting these records is kept, and how safe that is."""
        if self._protection is None:
            from .protection import Protection

            own = self._kv.protection if isinstance(self._kv, Protected) else None
            if isinstance(own, Protection):
                self._protection = own
            elif type(self._kv).__name__ == "MemoryStore":
                self._protection = Protection("memory", "this process")
            else:
                self._protection = Protection("custom", self.description)
        return self._protection

    @property
    def directory(self) -> Path | None:
        """The folder of an on-disk store, else None."""
        if not isinstance(self._kv, InFolder):
            return None
        from pathlib import Path

        return Path(self._kv.directory)

    def unreadable_files(self) -> list[Path]:
        """Entries found unreadable and moved aside, kept for inspection (``doctor`` lists them)."""
        return self._kv.unreadable() if isinstance(self._kv, ListsUnreadable) else []

    @property
    def unreadable(self) -> int:
        """How many entries were found unreadable and moved aside (0 where unknown)."""
        return len(self.unreadable_files())

    @property
    def lock_factory(self) -> LockFactory:
        """What :meth:`lock` calls: the file locks of the disk store, Redis's leases, or a
        lock that excludes nothing (a store of one's own given no ``lock=``)."""
        return self._lock_factory

    def lock(self, resource: str) -> AbstractAsyncContextManager[None]:
        """Hold this across read-refresh-write so other processes do not refresh too."""
        return self._lock_factory(resource)

    def failing_as(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Within the block, any error of the store underneath is a :class:`StorageError`
        saying ``action`` and naming this store (for code that uses :attr:`kv` directly)."""
        return failing_as(action, self.description)

    async def get(self, resource: str) -> ServerRecord | None:
        """The record for ``resource``; ``None`` when absent or unreadable (set aside, kept,
        and logged as a WARNING; :meth:`read` says so to the caller instead)."""
        found = await self.read(resource)
        if found.set_aside is not None:
            report_set_aside(found.set_aside)
        return found.record

    async def read(self, resource: str) -> RecordRead:
        """The record for ``resource``, and where its entry went if it was unreadable.

        As :meth:`get`, but an entry found unreadable and moved aside on the way is not
        logged: it is the answer's :attr:`RecordRead.set_aside`, for a caller that reports it
        itself (the ``token`` command folds it into its one line of error). Any further entry
        set aside during the same read is logged as usual.
        """
        moved: list[SetAside] = []
        collecting = collect_set_asides(moved)
        try:
            try:
                data = await self._kv.get(resource, collection=self._collection)
            except StorageError:
                raise
            except Exception as exc:
                raise StorageError(
                    f"could not read the token store ({self.description}): {exc}"
                ) from exc
            record = None if data is None else await self._record(resource, data)
        finally:
            stop_collecting(collecting)
        for extra in moved[1:]:
            report_set_aside(extra)
        return RecordRead(record, moved[0] if moved else None)

    async def _record(self, resource: str, data: Mapping[str, Any]) -> ServerRecord | None:
        """The record in a stored value; None when it is not one, after setting it aside.

        Set aside, not left in place: the login that follows would overwrite it, and it may be
        a newer version's record that the user wants back once that version is installed.
        """
        try:
            return ServerRecord.from_dict(data)
        except (ValueError, TypeError) as exc:
            from .aside import set_aside

            why = f"it is not a record this version can read: {exc}"
            await set_aside(self._kv, resource, collection=self._collection, expected=data, why=why)
            return None

    async def put(self, record: ServerRecord) -> None:
        """Store ``record``; one that would not read back is refused, never written: every
        reader would set it aside (keeping the live tokens in it) and log in again."""
        data = record.to_dict()
        try:
            ServerRecord.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise StorageError(
                f"refusing to store a record for {record.resource} that could not be read back "
                f"({exc}); this is a defect of mcp-client-auth, please report it"
            ) from None
        with self.failing_as("write the token store"):
            await self._kv.put(record.resource, data, collection=self._collection)

    async def delete(self, resource: str) -> bool:
        with self.failing_as("remove a record from the token store"):
            return await self._kv.delete(resource, collection=self._collection)

    async def resources(self) -> list[str]:
        """Every stored resource URL, where the store can enumerate its keys."""
        if not isinstance(self._kv, Listing):
            raise StorageError(f"this store ({self.description}) cannot list its entries")
        return sorted(await self._kv.keys(collection=self._collection))

    async def records(self) -> list[ServerRecord]:
        """Every stored record, in the order of :meth:`resources`, each entry read once.

        What :meth:`resources` then :meth:`get` for each give, without reading (and
        decrypting) every entry twice: the disk and Redis stores list and read in one pass;
        another store that can enumerate its keys answers ``keys`` then ``get_many``. An entry
        that cannot be read is left out, as :meth:`get` leaves it, and set aside with a
        WARNING, whether it cannot be decrypted or decrypts to something that is not a record
        (:meth:`unreadable_files` lists the disk store's).
        """
        kv = self._kv
        if not isinstance(kv, (ListsItems, Listing)):
            raise StorageError(f"this store ({self.description}) cannot list its entries")
        pairs: list[tuple[str, Any]]
        with self.failing_as("read the token store"):
            if isinstance(kv, ListsItems):
                pairs = list(await kv.items(collection=self._collection))
            else:
                names = await kv.keys(collection=self._collection)
                values = await self._kv.get_many(names, collection=self._collection)
                pairs = list(zip(names, values, strict=True))
        pairs.sort(key=_first)
        found = [await self._record(resource, data) for resource, data in pairs if data is not None]
        return [record for record in found if record is not None]

    async def aclose(self) -> None:
        """Close what the store holds open for the running event loop (a Redis connection)."""
        if isinstance(self._kv, Closes):
            await self._kv.aclose()

    def __repr__(self) -> str:
        return f"TokenStore({self.description})"


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]
