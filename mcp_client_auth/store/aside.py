"""Setting aside a stored value that decrypts but is not a record: moved, never deleted.

The disk and Redis stores already move aside an entry they cannot decrypt. A value that does
decrypt but is not a record this version can read (written by a newer version, or damaged
before it was encrypted) is only found one level up, by :class:`~.token_store.TokenStore`;
left in place, the next login would overwrite it and nothing would be kept. So it is moved
aside the same way, wherever it is:

* a store with a ``set_aside(key, *, collection, expected, why)`` method does it itself, as
  it does an undecryptable entry (:class:`~.encrypted.EncryptedKeyValue` renames the entry;
  the encrypted file store renames its file ``<name>.unreadable-<time>-<rand>``, so
  ``doctor`` counts it and lists the file);
* any other ``AsyncKeyValue``: the value is copied into the collection
  ``<collection>.unreadable`` under ``<key>.unreadable-<time>-<rand>``, then removed if it is
  still the same (with no atomic move, a small window is left between that check and the
  delete).

In every case a value replaced meanwhile by a writer (another process's login) is left alone.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from ..values import Value, set_field
from .capabilities import SetsAside

if TYPE_CHECKING:
    from key_value.aio.protocols.key_value import AsyncKeyValue

__all__ = [
    "ASIDE_COLLECTION",
    "UNREADABLE",
    "SetAside",
    "aside_name",
    "collect_set_asides",
    "report_set_aside",
    "set_aside",
    "stop_collecting",
]

logger = logging.getLogger("mcp_client_auth.store")

UNREADABLE = ".unreadable-"
ASIDE_COLLECTION = ".unreadable"  # appended to a collection's name, for a generic store


class SetAside(Value):
    """An unreadable stored entry that was moved aside (never deleted): what, where to, why.

    ``entry`` names the entry as it was found ("token store entry" and its file or its name in
    the store underneath, or "stored record for" and its key),
    ``moved_to`` where it is kept now, ``why`` what made it unreadable. Neither holds a
    token: the names are the store's own (hashes, on disk and in Redis, or the key it was
    stored under), and the reason describes the content without quoting it. A value: see
    :class:`.protection.Protection`.
    """

    __slots__ = ("entry", "moved_to", "why")
    entry: str
    moved_to: str
    why: str

    def __init__(
        self,
        entry: str,
        moved_to: str,
        why: str,
    ) -> None:
        set_field(self, "entry", entry)
        set_field(self, "moved_to", moved_to)
        set_field(self, "why", why)

    @property
    def message(self) -> str:
        """The one line the store logs as a WARNING when nobody asked to be told instead."""
        return (
            f"ignoring the unreadable {self.entry} ({self.why}): moved it "
            f"to {self.moved_to}; the server it was for will ask for a new login"
        )


# The set-asides of the read running in this context, when its caller collects them
# (``TokenStore.read``); None: each one is logged. A context variable, not an argument: the
# entry is set aside several layers down, inside whatever key-value stores are stacked.
_collected: ContextVar[list[SetAside] | None] = ContextVar(
    "mcp_client_auth_set_asides", default=None
)


def report_set_aside(found: SetAside) -> None:
    """Tell the reader collecting in this context, else log ``found`` as a WARNING."""
    collected = _collected.get()
    if collected is None:
        logger.warning("%s", found.message)
    else:
        collected.append(found)


def collect_set_asides(into: list[SetAside]) -> Token[list[SetAside] | None]:
    """From now on in this context, entries set aside are added to ``into``, not logged, until
    :func:`stop_collecting` is given the token returned. Two plain calls rather than a context
    manager: a read of the store is on every request's path."""
    return _collected.set(into)


def stop_collecting(token: Token[list[SetAside] | None]) -> None:
    """Log set-asides again, as before :func:`collect_set_asides` returned ``token``."""
    _collected.reset(token)


def aside_name(name: str) -> str:
    """The name an entry is moved to: its own, then when and a few random characters."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{name}{UNREADABLE}{stamp}-{secrets.token_hex(2)}"


async def set_aside(
    kv: AsyncKeyValue, key: str, *, collection: str, expected: Mapping[str, Any], why: str
) -> bool:
    """Move the value of ``key`` aside if it is still ``expected``; True when it was moved.

    Never raises: a store that fails here is reported by a WARNING and the value is left where
    it is (it reads as absent all the same).
    """
    try:
        if isinstance(kv, SetsAside):
            return await kv.set_aside(key, collection=collection, expected=expected, why=why)
        return await _set_aside_copy(kv, key, collection, expected, why)
    except Exception as exc:
        logger.warning(
            "ignoring the unreadable stored record for %s (%s); it could not be moved aside (%s)",
            key,
            why,
            exc,
        )
        return False


async def _set_aside_copy(
    kv: AsyncKeyValue, key: str, collection: str, expected: Mapping[str, Any], why: str
) -> bool:
    """Copy the value into the aside collection, then remove it; no store-specific call.

    The value is read again just before the delete, which happens only if it is still
    ``expected``: a login written while the copy was being put is kept (the copy then stays
    aside, harmless). Without an atomic move a small window is left between that read and the
    delete; the stores that have one close it (:class:`~.encrypted.EncryptedKeyValue` over
    Redis by ``move_if_unchanged``, the disk store by a rename).
    """
    if await kv.get(key, collection=collection) != dict(expected):
        return False
    aside, where = aside_name(key), collection + ASIDE_COLLECTION
    await kv.put(aside, dict(expected), collection=where)
    if await kv.get(key, collection=collection) != dict(expected):
        return False  # replaced while the copy was put: the new value is not ours to remove
    await kv.delete(key, collection=collection)
    moved_to = f"{aside} in the collection {where}"
    report_set_aside(SetAside(f"stored record for {key}", moved_to, why))
    return True
