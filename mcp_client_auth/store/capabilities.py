"""What a store can do beyond py-key-value-aio's ``AsyncKeyValue``, named as typed protocols.

Two kinds of store meet in this package, and each may or may not have a few optional abilities:

* the key-value store a :class:`~.token_store.TokenStore` wraps (ours, or any
  ``AsyncKeyValue``): whether it can list its keys (:class:`Listing`, :class:`ListsItems`),
  set an unreadable value aside itself (:class:`SetsAside`), run without ever suspending
  (:class:`NeverSuspends`), say where it is and how its key is kept (:class:`Described`,
  :class:`Protected`, :class:`InFolder`), list what it set aside (:class:`ListsUnreadable`),
  or has a connection to close (:class:`Closes`);
* the plain layer under the one class that encrypts (:class:`EntryLayer`: files in a folder,
  Redis, any ``AsyncKeyValue``), and the two abilities a plain ``AsyncKeyValue`` may add
  there: an atomic conditional rename (:class:`MovesIfUnchanged`) and a listing of every
  collection (:class:`ListsFolders`).

Code asks ``isinstance(store, Listing)`` rather than probing attribute names: the type
checker then knows the call's signature, and a store of one's own can offer an ability by
having the method, with no base class to inherit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    from .protection import Protection

__all__ = [
    "Closes",
    "Described",
    "EntryLayer",
    "InFolder",
    "Listing",
    "ListsFolders",
    "ListsItems",
    "ListsUnreadable",
    "MovesIfUnchanged",
    "NeverSuspends",
    "Protected",
    "SetsAside",
]


# --- a key-value store under TokenStore ---------------------------------------------------------


@runtime_checkable
class Listing(Protocol):
    """Lists the keys of a collection (py-key-value-aio's enumerable stores)."""

    async def keys(
        self, collection: str | None = None, *, limit: int | None = None
    ) -> list[str]: ...


@runtime_checkable
class ListsItems(Protocol):
    """Lists (key, value) of a collection in one pass, each entry read once."""

    async def items(self, collection: str | None = None) -> list[tuple[str, dict[str, Any]]]: ...


@runtime_checkable
class SetsAside(Protocol):
    """Moves a value aside itself (a rename, where it has one), if it is still ``expected``."""

    async def set_aside(
        self, key: str, *, collection: str, expected: Mapping[str, Any], why: str
    ) -> bool: ...


@runtime_checkable
class NeverSuspends(Protocol):
    """Its coroutines complete without awaiting anything, when this is True: sync code runs
    its reads and writes at once, with no event loop."""

    never_suspends: bool


@runtime_checkable
class Described(Protocol):
    """Says, in words for a person, where its entries are."""

    @property
    def description(self) -> str: ...


@runtime_checkable
class Protected(Protocol):
    """Knows where its key is kept (None: it does not know)."""

    @property
    def protection(self) -> Protection | None: ...


@runtime_checkable
class InFolder(Protocol):
    """Keeps its entries in a folder on disk."""

    directory: Path


@runtime_checkable
class ListsUnreadable(Protocol):
    """Lists the entries it found unreadable and moved aside (what ``doctor`` reports)."""

    def unreadable(self) -> list[Path]: ...


@runtime_checkable
class Closes(Protocol):
    """Holds something open for the running event loop (a connection) until closed."""

    async def aclose(self) -> None: ...


# --- a plain layer under the encryption ---------------------------------------------------------


@runtime_checkable
class MovesIfUnchanged(Protocol):
    """Renames ``key`` to ``new_key`` in one step, if its value is still ``expected``."""

    async def move_if_unchanged(
        self, key: str, new_key: str, *, collection: str, expected: Mapping[str, Any]
    ) -> bool: ...


@runtime_checkable
class ListsFolders(Protocol):
    """Lists every hashed collection it holds (so that a rotation finds them all)."""

    async def folders(self) -> list[str]: ...


class EntryLayer(Protocol):
    """Where encrypted entries are kept, by hashed collection (``folder``) and hashed name.

    What it stores for an entry (``stored``) is its own: the token's bytes in a file, a
    mapping ``{"fernet": token}`` in a key-value store; :meth:`token` and :meth:`wrap` convert.
    """

    #: Every call completes without awaiting (small local files): see :class:`NeverSuspends`.
    never_suspends: bool

    @property
    def where(self) -> str:
        """The place, as messages name it (never with a password)."""
        ...

    @property
    def key_advice(self) -> str:
        """How to give a process the store's key, for the error refusing another key."""
        ...

    def token(self, stored: Any) -> bytes | None:
        """The encrypted token in ``stored``; None when it is not an encrypted entry."""
        ...

    def wrap(self, token: bytes) -> Any:
        """What is stored for ``token``."""
        ...

    def collection(self, folder: str) -> str:
        """Where the hashed collection ``folder`` is kept (a collection's name, a folder)."""
        ...

    def describe(self, folder: str, name: str) -> str:
        """The entry at (``folder``, ``name``), as a warning names it."""
        ...

    async def get(self, folder: str, name: str) -> Any | None: ...

    async def get_many(self, folder: str, names: Sequence[str]) -> list[Any | None]: ...

    async def put(self, folder: str, name: str, stored: Any, *, ttl: float | None) -> None: ...

    async def delete(self, folder: str, name: str) -> bool: ...

    async def names(self, folder: str) -> list[str]:
        """Every name in ``folder``; a :class:`StorageError` where the layer cannot list."""
        ...

    async def move_if_unchanged(self, folder: str, name: str, new_name: str, stored: Any) -> bool:
        """Rename the entry to ``new_name`` if it still holds ``stored``; True when moved."""
        ...

    async def claim_marker(self, marker: dict[str, Any]) -> Mapping[str, Any] | None:
        """Write ``marker`` unless there is one; the marker in force (None: the layer checks
        its marker when it is opened instead)."""
        ...

    async def write_marker(self, fields: dict[str, Any]) -> None:
        """Record ``fields`` (the newest key's id, after a rotation) in the marker."""
        ...
