"""Where a store's key is kept and how well that protects it: what ``doctor`` and ``status``
print, and what a store key carries with it."""

from __future__ import annotations

from typing import Literal

from ..values import Value, set_field

__all__ = ["Protection", "StoreKey"]


class Protection(Value):
    """Where a store's key is kept and how well that protects it (what ``doctor`` prints).

    ``kind`` is one of ``"keyring"``, ``"key file"``, ``"environment"``, ``"application"``
    (the application passed the key, ``TokenStore.redis(key=...)``), ``"memory"``,
    ``"custom"``; ``where`` names the keyring backend, the key file or the variable; ``note``
    says why a weaker kind is in force.

    A ``Value`` (``mcp_client_auth.values``), like the other values a reconnecting process
    makes (:class:`StoreKey`, :class:`.keyring_access.KeyringProbe`, :class:`.aside.SetAside`,
    :class:`.token_store.RecordRead`, the flow's settings and URL parts): fields, equality,
    hash, repr and immutability as a frozen dataclass's, with ``replace()``. On Python 3.11 a
    frozen dataclass compiles each method it generates when its module is imported, half a
    millisecond a class; a reconnect made a dozen. The records whose use includes
    :func:`dataclasses.replace` (``TokenSet``, ``ClientRegistration``, ``ServerRecord``) stay
    dataclasses.
    """

    __slots__ = ("kind", "note", "where")
    kind: Literal["keyring", "key file", "environment", "application", "memory", "custom"]
    where: str
    note: str

    def __init__(
        self,
        kind: Literal["keyring", "key file", "environment", "application", "memory", "custom"],
        where: str,
        note: str = "",
    ) -> None:
        set_field(self, "kind", kind)
        set_field(self, "where", where)
        set_field(self, "note", note)

    @property
    def in_keyring(self) -> bool:
        """True when the key is in a working system keyring (the protection we aim for)."""
        return self.kind == "keyring"

    @property
    def place(self) -> str:
        """Where the key is, as a phrase: 'the system keyring (...)', 'the key file ...'."""
        if self.kind == "keyring":
            return f"the system keyring ({self.where})"
        if self.kind == "key file":
            return f"the key file {self.where}"
        if self.kind == "environment":
            return f"the {self.where} environment variable"
        if self.kind == "application":
            return f"the application ({self.where})"
        return self.where

    def __str__(self) -> str:
        if self.kind == "keyring":
            return f"encrypted; key in {self.place}"
        if self.kind == "key file":
            text = f"encrypted; key in {self.place}, protected only by file permissions (0600)"
            return f"{text}: {self.note}" if self.note else text
        if self.kind in ("environment", "application"):
            return f"encrypted; key from {self.place}"
        if self.kind == "memory":
            return "in memory only; forgotten when the process exits"
        return f"as protected by {self.where}"


class StoreKey(Value):
    """The keys of one store (newest first) and the protection they have. Never printed.

    A ``Value`` (``mcp_client_auth.values``), not a named tuple: a tuple of keys could be
    iterated or encoded into text; a value reaches text only through its repr, which counts
    the keys."""

    __slots__ = ("keys", "pending", "protection")
    keys: tuple[bytes, ...]
    protection: Protection
    # made but not kept anywhere yet (``create=False``): the store keeps it once it writes
    pending: bool

    def __init__(
        self, keys: tuple[bytes, ...], protection: Protection, pending: bool = False
    ) -> None:
        set_field(self, "keys", keys)
        set_field(self, "protection", protection)
        set_field(self, "pending", pending)

    def __repr__(self) -> str:
        return f"StoreKey({len(self.keys)} key(s), {self.protection})"

    def __str__(self) -> str:
        return repr(self)
