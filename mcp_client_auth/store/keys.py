"""The store key: which one a store uses, where it is kept, made on first use.

One 32-byte key per store folder, made on first use. Where it is kept, best first:

1. ``MCP_CLIENT_AUTH_KEY`` (a Fernet key; several, comma-separated, newest first, to rotate):
   an explicit override for CI and containers, where a secret is injected by the platform.
2. The system keyring (service ``mcp-client-auth``, user = the store folder), when a real one
   works: macOS Keychain, Windows Credential Locker, the freedesktop Secret Service.
3. A key file (0600) in the user config folder, apart from the data, announced by one WARNING
   per process: only file permissions protect it. Its folder must be this user's own and not
   writable by others, and the file is never read through a symbolic link (see :mod:`.private`):
   a key planted there by someone else would make every token stored afterwards theirs to read.

The key is read once per process and kept in memory. The keyring itself is reached through
:mod:`.keyring_access` (no hang, no discovery), the key file through :mod:`.key_file`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import StorageError
from ..values import Value, set_field
from .codec import format_key, parse_keys
from .key_file import (
    key_file_path,
    orphan_key_files,
    read_key_file,
    remove_orphan_key_files,
    write_key_file,
)
from .keyring_access import (
    KEYRING_TIMEOUT,
    SERVICE,
    KeyringProbe,
    forget_backend,
    keyring_call,
    probe_keyring,
    short_backend,
)
from .protection import Protection, StoreKey

__all__ = [
    "ENV_KEY",
    "KEYRING_TIMEOUT",
    "SERVICE",
    "KeyringProbe",
    "Protection",
    "StoreKey",
    "forget_keys",
    "key_file_path",
    "load_key",
    "orphan_key_files",
    "probe_keyring",
    "remove_key",
    "remove_orphan_key_files",
]

logger = logging.getLogger("mcp_client_auth.store")

ENV_KEY = "MCP_CLIENT_AUTH_KEY"


_cache_lock = threading.Lock()
_cache: dict[str, StoreKey] = {}
_warned: set[str] = set()


def forget_keys() -> None:
    """Drop the keys kept in memory (tests; a long-lived process after a key rotation)."""
    with _cache_lock:
        _cache.clear()
        _warned.clear()
    forget_backend()


def _warn_key_file(directory: Path | str, key: StoreKey) -> None:
    if str(directory) in _warned:
        return
    _warned.add(str(directory))
    # One short line, once per process and store: `doctor` gives the whole story (why the
    # keyring does not work, how to set one up, MCP_CLIENT_AUTH_KEY).
    logger.warning(
        "the token store key is in %s, protected only by its file permissions (no working "
        "system keyring; `mcp-client-auth doctor` says more)",
        key.protection.where,
    )


def load_key(
    directory: Path | str,
    *,
    require_keyring: bool = False,
    kept_in: str | None = None,
    has_entries: bool = False,
    timeout: float = KEYRING_TIMEOUT,
    start_over: str | None = None,
    create: bool = True,
    candidate: tuple[bytes, ...] | None = None,
) -> StoreKey:
    """The key of the store in ``directory``, made on first use (see the module docstring).

    ``create=False``: a store that has no key yet gets a new one that is not kept anywhere
    (``pending``): a store that is only opened, or whose first login fails, leaves no key
    behind. The store calls again with ``create=True`` and that key as ``candidate`` before
    its first write: the candidate is kept, unless another process kept a key meanwhile, which
    is returned instead.

    ``directory`` names the store: its folder, or for a store that is not a folder (Redis)
    its URL without the password. ``kept_in`` (from the store's marker) and ``has_entries``
    say whether the store already holds data: then a key that cannot be found is an error
    naming where it was, never silently replaced by a new key that would make every entry
    unreadable; ``start_over`` is that error's last advice (default: move the folder away).
    """
    env = os.environ.get(ENV_KEY)
    if env:
        if require_keyring:
            raise StorageError(
                f"require_keyring=True refuses a key from {ENV_KEY}: unset it to use the "
                "system keyring"
            )
        return StoreKey(parse_keys(env, source=ENV_KEY), Protection("environment", ENV_KEY))
    folder = str(directory)
    with _cache_lock:
        key = _cache.get(folder)
    if key is None or (key.pending and create):
        made = _NewKey(create, candidate or (key.keys if key is not None else None))
        key = _load_key(directory, require_keyring, kept_in, has_entries, timeout, start_over, made)
        with _cache_lock:
            _cache[folder] = key
    if require_keyring and not key.protection.in_keyring:
        raise StorageError(
            f"require_keyring=True, but the key of the token store {directory} is in "
            f"{key.protection.place}: {key.protection.note or 'no working keyring'}"
        )
    if key.protection.kind == "key file":
        _warn_key_file(directory, key)
    return key


def _missing_key(
    directory: Path | str,
    kept_in: str | None,
    probe: KeyringProbe | None,
    start_over: str | None = None,
) -> StorageError:
    where = f"it was kept in {kept_in}" if kept_in else "it was not found"
    now = f"; the keyring is {probe.verdict}: {probe.reason}" if probe and not probe.works else ""
    start_over = start_over or (
        f"to start over, move the folder {directory} away (you will log in again)"
    )
    return StorageError(
        f"the token store at {directory} holds entries, but its key is missing ({where}{now}). "
        f"Unlock or restore the keyring, or set {ENV_KEY} to that key; {start_over}."
    )


class _NewKey(Value):
    """How to make a key where there is none: keep it now (``create``) or leave it pending,
    and which key to make (``candidate``, the one a pending store already uses). A value, as
    :class:`.protection.StoreKey` is: the candidate is a key."""

    __slots__ = ("candidate", "create")
    _hidden = frozenset({"candidate"})
    create: bool
    candidate: tuple[bytes, ...] | None

    def __init__(self, create: bool = True, candidate: tuple[bytes, ...] | None = None) -> None:
        set_field(self, "create", create)
        set_field(self, "candidate", candidate)

    def keys(self) -> tuple[bytes, ...]:
        return self.candidate or (os.urandom(32),)


def _load_key(
    directory: Path | str,
    require_keyring: bool,
    kept_in: str | None,
    has_entries: bool,
    timeout: float,
    start_over: str | None,
    made: _NewKey,
) -> StoreKey:
    user = str(directory)
    key_file = key_file_path(directory)
    value, probe, backend = keyring_call(timeout, lambda b: b.get_password(SERVICE, user))
    in_keyring = Protection("keyring", short_backend(backend))
    if value is not None:
        keys = parse_keys(value, source=f"the keyring entry {SERVICE!r}/{user!r}")
        _drop_duplicate_key_file(key_file, keys)
        return StoreKey(keys, in_keyring)
    if probe is None:  # the keyring answered "no such key": make sure it can hold one
        probe = probe_keyring(timeout=timeout)
    if probe.works:
        from_file = read_key_file(key_file)
        if from_file is None and has_entries:
            raise _missing_key(directory, kept_in, None, start_over)
        moving = from_file is not None
        if not moving and not made.create:
            return StoreKey(made.keys(), in_keyring, pending=True)
        keys = from_file or made.keys()
        text = ",".join(format_key(k) for k in keys)
        stored, failure, _ = keyring_call(timeout, lambda b: _set_and_check(b, user, text))
        if stored:
            if moving:
                logger.info("moved the key of the token store %s into the system keyring", user)
                try:
                    key_file.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    logger.warning("could not remove the key file %s: %s", key_file, exc)
            return StoreKey(keys, in_keyring)
        probe = failure or KeyringProbe("missing", backend, "the keyring did not keep the key")
    if require_keyring:
        raise StorageError(
            f"require_keyring=True, but there is no working system keyring for the token store "
            f"{directory}: {probe.verdict} ({probe.backend}): {probe.reason}. "
            "Run `mcp-client-auth doctor` for details."
        )
    note = f"the system keyring is {probe.verdict}: {probe.reason}"
    from_file = read_key_file(key_file)
    if from_file is None:
        if has_entries:
            raise _missing_key(directory, kept_in, probe, start_over)
        from_file = made.keys()
        if not made.create:
            return StoreKey(from_file, Protection("key file", str(key_file), note), pending=True)
        write_key_file(key_file, from_file, directory)
    return StoreKey(from_file, Protection("key file", str(key_file), note))


def _set_and_check(backend: Any, user: str, text: str) -> bool:
    backend.set_password(SERVICE, user, text)
    return bool(backend.get_password(SERVICE, user) == text)


def _drop_duplicate_key_file(key_file: Path, keys: tuple[bytes, ...]) -> None:
    """Remove a key file left from a fallback once the same key is safe in the keyring."""
    try:
        if read_key_file(key_file) == keys:
            key_file.unlink()
            logger.info("removed %s: the same key is in the system keyring", key_file)
    except (OSError, StorageError):
        pass


def remove_key(directory: Path | str, *, timeout: float = KEYRING_TIMEOUT) -> None:
    """Forget the key of the store in ``directory``: its keyring entry and its key file.

    For a store that is itself being removed (a demo's temporary store): the entries it
    encrypted become unreadable for good.
    """
    user = str(directory)
    with _cache_lock:
        _cache.pop(user, None)
    keyring_call(timeout, lambda b: _delete_if_present(b, user))
    try:
        key_file_path(directory).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"could not remove the key file of {directory}: {exc.strerror}") from exc


def _delete_if_present(backend: Any, user: str) -> None:
    if backend.get_password(SERVICE, user) is not None:
        backend.delete_password(SERVICE, user)
