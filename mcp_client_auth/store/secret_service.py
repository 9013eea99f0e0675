"""The freedesktop Secret Service, spoken to through ``secretstorage`` without ``keyring``.

Why: on Linux the store key is read at the start of nearly every command, and ``import
keyring`` with its SecretService backend is several times the cost of ``secretstorage``, which
does the work (``keyring.backend`` pulls in ``jaraco.context`` and with it ``urllib.request``,
``http.client`` and ``email``, plus ``importlib_metadata`` and ``configparser``; figures in
``benchmarks/README.md``). ``keyring``'s SecretService backend is a thin layer over
``secretstorage``; this is the same layer, kept item for item compatible with it, so a key
written by either is found by the other:

* the default collection (``secretstorage.get_default_collection``), unlocked first when it
  is locked, and refused as locked when it stays locked (the prompt was dismissed);
* lookups by the attributes ``{"service": ..., "username": ...}`` (keyring's default scheme);
* items created with ``{"application": "Python keyring library", "service": ...,
  "username": ...}``, keyring's label ``Password for '<username>' on '<service>'``, and
  ``replace=True``.

It is used only when the user configured no keyring backend (see
:func:`.keyring_access.platform_backend`):
a configured backend, a keyring property set in the environment, macOS and Windows go through
``keyring`` itself. It has no timeout of its own: every call is made by :mod:`.keyring_access` in
its timeout thread, like a ``keyring`` backend's.

Each call opens its own D-Bus connection and closes it, as keyring's backend does, so a call
abandoned on a timeout never shares its connection with a later one. Whether the Secret
Service is there at all is checked on the first connection only, which makes reading a key one
connection in all (keyring's backend opens one more for its viability check).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secretstorage import Collection

DBusConnection = Any  # jeepney's blocking DBusConnection (jeepney ships no type information)

__all__ = [
    "APPLICATION",
    "KEYRING_BACKEND",
    "SecretServiceInitError",
    "SecretServiceKeyring",
    "SecretServiceLocked",
    "SecretServiceUnavailable",
]

KEYRING_BACKEND = "keyring.backends.SecretService.Keyring"
"""The keyring backend whose items these are: what ``probe_keyring`` and ``doctor`` report."""

APPLICATION = "Python keyring library"
"""keyring's SecretService ``appid``, the ``application`` attribute of the items it creates."""


class SecretServiceUnavailable(RuntimeError):
    """No Secret Service can be reached (keyring raises RuntimeError with the same words)."""


class SecretServiceLocked(Exception):
    """The collection or item stays locked: the unlock prompt was dismissed or not shown."""


class SecretServiceInitError(Exception):
    """The default collection cannot be had (keyring's InitError, with the same words)."""


class SecretServiceKeyring:
    """get/set/delete of a password, as ``keyring.backends.SecretService.Keyring`` does them.

    The same three methods as a keyring backend, so the store's code calls either alike.
    Secrets are passed as text (UTF-8), never logged, and never part of an exception.
    """

    name = KEYRING_BACKEND

    def __init__(self) -> None:
        self._available = False

    def get_password(self, service: str, username: str) -> str | None:
        """The secret stored for ``service``/``username``, or None when there is none."""
        with closing(self._connect()) as connection:
            collection = _unlocked_default_collection(connection)
            for item in collection.search_items(_query(service, username)):
                if item.is_locked():
                    item.unlock()
                    if item.is_locked():
                        raise SecretServiceLocked("Failed to unlock the item!")
                return item.get_secret().decode("utf-8")
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store ``password``, replacing an item with the same attributes (keyring's item)."""
        with closing(self._connect()) as connection:
            collection = _unlocked_default_collection(connection)
            attributes = {**_query(service, username), "application": APPLICATION}
            label = f"Password for '{username}' on '{service}'"
            collection.create_item(label, attributes, password.encode("utf-8"), replace=True)

    def delete_password(self, service: str, username: str) -> None:
        """Delete the first item found, as keyring does; LookupError when there is none."""
        with closing(self._connect()) as connection:
            collection = _unlocked_default_collection(connection)
            for item in collection.search_items(_query(service, username)):
                item.delete()
                return
        raise LookupError("No such password!")

    def _connect(self) -> DBusConnection:
        """A new session-bus connection; the first one also checks the service is there.

        The words of the errors are keyring's own, so ``doctor`` reads the same either way.
        An OSError (the socket of DBUS_SESSION_BUS_ADDRESS is gone) is left as it is: the
        store turns it into advice about a stale address.
        """
        import secretstorage

        try:
            connection = secretstorage.dbus_init()
        except secretstorage.SecretStorageException as exc:
            raise SecretServiceUnavailable(f"Unable to initialize SecretService: {exc}") from exc
        if self._available:
            return connection
        try:
            available = secretstorage.check_service_availability(connection)
        except BaseException:
            connection.close()
            raise
        if not available:
            connection.close()
            raise SecretServiceUnavailable(
                "The Secret Service daemon is neither running nor activatable through D-Bus"
            )
        self._available = True
        return connection


def _query(service: str, username: str) -> dict[str, str]:
    """keyring's default scheme: the attributes its SecretService backend searches by."""
    return {"username": username, "service": service}


def _unlocked_default_collection(connection: DBusConnection) -> Collection:
    """The default collection, unlocked (keyring's ``get_preferred_collection``)."""
    import secretstorage

    try:
        collection = secretstorage.get_default_collection(connection)
    except secretstorage.SecretStorageException as exc:
        raise SecretServiceInitError(f"Failed to create the collection: {exc}.") from exc
    if collection.is_locked():
        collection.unlock()
        if collection.is_locked():  # the prompt was dismissed, or could not be shown
            raise SecretServiceLocked("Failed to unlock the collection!")
    return collection
