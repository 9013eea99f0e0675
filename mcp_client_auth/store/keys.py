"""The store key: where it is kept, how well that protects it, and the keyring probe.

One 32-byte key per store folder, made on first use. Where it is kept, best first:

1. ``MCP_CLIENT_AUTH_KEY`` (a Fernet key; several, comma-separated, newest first, to rotate):
   an explicit override for CI and containers, where a secret is injected by the platform.
2. The system keyring (service ``mcp-client-auth``, user = the store folder), when a real one
   works: macOS Keychain, Windows Credential Locker, the freedesktop Secret Service.
3. A key file (0600) in the user config folder, apart from the data, announced by one WARNING
   per process: only file permissions protect it. Its folder must be this user's own and not
   writable by others, and the file is never read through a symbolic link (see :mod:`.private`):
   a key planted there by someone else would make every token stored afterwards theirs to read.

The key is read once per process and kept in memory. ``keyring`` is imported only when a key
is needed, and its backend discovery (50-70 ms, most of it importing every platform's backend)
is skipped: we load the platform's own backend directly, unless the user chose one
(``PYTHON_KEYRING_BACKEND``, a ``KEYRING_PROPERTY_*`` variable or a keyringrc file), which we
then honour. On Linux and the BSDs, when the user chose none, ``keyring`` is not imported at
all (70 ms of imports, most of a CLI command's start): the Secret Service is spoken to through
``secretstorage`` directly, finding and making the very items keyring's backend does (see
:mod:`.secret_service`). A keyring counts only when it really works (see
:func:`probe_keyring`), and every keyring call runs under a timeout, so a locked or hanging
keyring never hangs the caller.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import StorageError
from .disk import folder_key_hash, format_key, parse_keys, write_file_atomically
from .private import check_private_folder, open_private, private_folder

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

SERVICE = "mcp-client-auth"
ENV_KEY = "MCP_CLIENT_AUTH_KEY"
KEYRING_TIMEOUT = 3.0
_PROBE_USER = "mcp-client-auth keyring probe"

Verdict = Literal["works", "missing", "locked", "slow"]
T = TypeVar("T")


# --- what protection is in force ----------------------------------------------------------


@dataclass(frozen=True)
class Protection:
    """Where a store's key is kept and how well that protects it (what ``doctor`` prints).

    ``kind`` is one of ``"keyring"``, ``"key file"``, ``"environment"``, ``"application"``
    (the application passed the key, ``TokenStore.redis(key=...)``), ``"memory"``,
    ``"custom"``; ``where`` names the keyring backend, the key file or the variable; ``note``
    says why a weaker kind is in force.
    """

    kind: Literal["keyring", "key file", "environment", "application", "memory", "custom"]
    where: str
    note: str = ""

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


@dataclass(frozen=True, repr=False)
class StoreKey:
    """The keys of one store (newest first) and the protection they have. Never printed."""

    keys: tuple[bytes, ...]
    protection: Protection
    # made but not kept anywhere yet (``create=False``): the store keeps it once it writes
    pending: bool = False

    def __repr__(self) -> str:
        return f"StoreKey({len(self.keys)} key(s), {self.protection})"

    __str__ = __repr__


# --- the keyring probe ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyringProbe:
    """The verdict on the system keyring: ``works``, ``missing``, ``locked`` or ``slow``.

    ``backend`` is the keyring backend's class (or ``"none"``), ``reason`` one line saying why
    the verdict is what it is, and what to do where there is something to do.
    """

    verdict: Verdict
    backend: str
    reason: str

    @property
    def works(self) -> bool:
        return self.verdict == "works"

    def __str__(self) -> str:
        return f"{self.verdict} ({self.backend}): {self.reason}"


class _Timeout(Exception):
    pass


def _within(timeout: float, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a daemon thread and wait at most ``timeout`` seconds for it.

    A daemon thread, not an executor: an executor's threads are joined at interpreter exit,
    so a keyring call that hangs would hang the exit too. A call that times out is abandoned.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="mcp-client-auth-keyring", daemon=True).start()
    if not done.wait(timeout):
        raise _Timeout
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


_backend_lock = threading.Lock()
_backend: tuple[Any, str | None] | None = None  # (backend, why it does not count) once found


def _user_configured_backend() -> bool:
    """True when the user chose a keyring backend (environment variable or keyringrc)."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    from keyring.util import platform_

    return bool((platform_.config_root() / "keyringrc.cfg").exists())


def _keyring_properties_set() -> bool:
    """Whether a ``KEYRING_PROPERTY_*`` variable changes keyring's backends (for instance the
    Secret Service's collection or attribute scheme): then keyring itself must do the work."""
    return any(name.startswith("KEYRING_PROPERTY_") for name in os.environ)


def _keyringrc_exists_xdg() -> bool:
    """keyring's own config path on Linux and the BSDs, found without importing keyring."""
    root = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.exists(os.path.join(root, "python_keyring", "keyringrc.cfg"))


class _NoKeyring(Exception):
    """No keyring backend can be used here; the message says why, ``backend`` which one."""

    def __init__(self, reason: str, backend: str = "none") -> None:
        super().__init__(reason)
        self.backend = backend


def _reason(exc: BaseException) -> str:
    """One readable line for what a backend raised (an OSError's ``[Errno 2]`` says nothing)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _platform_backend() -> tuple[Any, str | None]:
    """The keyring backend, loaded directly (no discovery), and why it does not count (or None).

    Raises :class:`_NoKeyring` when there is none. Runs in the timeout thread: checking a
    backend's viability may talk to D-Bus. Found once per process (see :func:`forget_keys`).
    """
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = _find_backend()
        return _backend


def _find_backend() -> tuple[Any, str | None]:
    """The backend and why it does not count (see :func:`_platform_backend`)."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if not (os.environ.get("PYTHON_KEYRING_BACKEND") or _keyringrc_exists_xdg()):
            if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
                # Checked before importing anything: on headless machines this is the common
                # case, and it costs nothing.
                raise _NoKeyring(
                    "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set), so no "
                    "Secret Service keyring"
                )
            if not _keyring_properties_set():
                return _direct_secret_service(), None
    return _keyring_backend()


def _direct_secret_service() -> Any:
    """The Secret Service through ``secretstorage`` (no ``keyring``): see :mod:`.secret_service`.

    Whether the service is there is checked by its first call, on the connection that call
    needs anyway, not here: one D-Bus connection per call, none for a viability check.
    """
    from .secret_service import KEYRING_BACKEND, SecretServiceKeyring

    try:
        import secretstorage  # noqa: F401  (the module that does the work must be installed)
    except ImportError as exc:
        raise _NoKeyring("SecretStorage required", KEYRING_BACKEND) from exc
    return SecretServiceKeyring()


def _keyring_backend() -> tuple[Any, str | None]:
    """The backend through ``keyring``: the configured one, else the platform's own."""
    import keyring.core

    if _user_configured_backend():
        # keyring's own loaders, not get_keyring(): no discovery, and keyring's global
        # backend is left alone for the application's other uses of keyring.
        try:
            backend = keyring.core.load_env() or keyring.core.load_config()
        except Exception as exc:  # a backend may raise anything while it loads
            raise _NoKeyring(
                f"the configured keyring backend cannot be used: {_reason(exc)}"
            ) from exc
        if backend is not None:
            return backend, _refusal(backend)
    if sys.platform == "darwin":
        from keyring.backends import macOS as module
    elif sys.platform == "win32":
        from keyring.backends import Windows as module
    else:
        from keyring.backends import SecretService as module
    cls = getattr(module, "WinVaultKeyring", None) or module.Keyring
    name = f"{cls.__module__}.{cls.__qualname__}"
    try:
        priority = float(cls.priority)  # the viability check: raises when unusable here
        backend = cls()
    except Exception as exc:  # a backend may raise anything: OSError when D-Bus is gone
        raise _NoKeyring(_why_unusable(exc), name) from exc
    return backend, _refusal(backend, priority)  # checked once: it may open a D-Bus connection


def _why_unusable(exc: BaseException) -> str:
    """Why the platform's backend cannot be used, as a person can act on it."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if isinstance(exc, OSError) and address:
        return (
            f"the D-Bus session bus at {address} cannot be reached ({_reason(exc)}); is "
            "DBUS_SESSION_BUS_ADDRESS left over from another session?"
        )
    return str(exc) if isinstance(exc, RuntimeError) and str(exc) else _reason(exc)


def _backend_name(backend: Any) -> str:
    """The keyring backend's class; for the direct Secret Service, keyring's backend whose
    items it reads and makes (so ``doctor`` and the store's marker read the same either way)."""
    from .secret_service import SecretServiceKeyring

    if isinstance(backend, SecretServiceKeyring):
        return backend.name
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _refusal(backend: Any, priority: float | None = None) -> str | None:
    """Why ``backend`` does not count as a keyring, or None when it may.

    ``priority`` is the backend's, when the caller already asked for it: asking checks the
    backend's viability again, which for the Secret Service means another D-Bus connection.
    """
    name = _backend_name(backend)
    module = type(backend).__module__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return "no keyring backend is available"
    if "plaintext" in name.lower():
        return f"{name} keeps secrets in plain text, which protects nothing"
    if priority is None:
        try:
            priority = float(backend.priority)
        except Exception as exc:  # a backend's viability check may raise anything
            return f"{name} cannot be used here: {exc}"
    if priority < 1:
        return f"{name} is not recommended by keyring (priority {priority:g})"
    return None


def _failure(exc: BaseException, backend: str) -> KeyringProbe:
    """The verdict for an exception from a keyring call."""
    if isinstance(exc, _Timeout):
        return KeyringProbe(
            "slow",
            backend,
            "the keyring did not answer in time (is an unlock prompt waiting?)",
        )
    if isinstance(exc, _NoKeyring):
        return KeyringProbe("missing", exc.backend if backend == "none" else backend, str(exc))
    from .secret_service import (
        SecretServiceInitError,
        SecretServiceLocked,
        SecretServiceUnavailable,
    )

    locked: tuple[type[BaseException], ...] = (SecretServiceLocked,)
    init: tuple[type[BaseException], ...] = (SecretServiceInitError,)
    errors = sys.modules.get("keyring.errors")  # not imported: none of its errors was raised
    if errors is not None:
        locked += (errors.KeyringLocked,)
        init += (errors.InitError,)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, locked):
        return KeyringProbe(
            "locked", backend, f"the keyring is locked ({text}); unlock it and try again"
        )
    if isinstance(exc, init) and "dismissed" in text.lower():
        return KeyringProbe(
            "locked",
            backend,
            f"the keyring needs an unlock prompt that could not be shown ({text})",
        )
    if isinstance(exc, (OSError, SecretServiceUnavailable)):
        return KeyringProbe("missing", backend, _why_unusable(exc))
    return KeyringProbe("missing", backend, f"{type(exc).__name__}: {text}")


def probe_keyring(*, timeout: float = KEYRING_TIMEOUT) -> KeyringProbe:
    """Whether the system keyring really works: one verdict, never an exception, never a hang.

    Works means: a backend that is not fail, null or plaintext, recommended by keyring
    (priority >= 1), and a trial set, get and delete that succeed within ``timeout`` seconds.
    """
    found: dict[str, str] = {"backend": "none"}

    def trial() -> KeyringProbe:
        backend, refused = _platform_backend()
        name = found["backend"] = _backend_name(backend)
        if refused:
            return KeyringProbe("missing", name, refused)
        secret = secrets.token_urlsafe(16)
        user = f"{_PROBE_USER} {os.getpid()} {secrets.token_hex(4)}"  # concurrent probes
        backend.set_password(SERVICE, user, secret)
        try:
            got = backend.get_password(SERVICE, user)
        finally:
            try:
                backend.delete_password(SERVICE, user)
            except Exception as exc:
                logger.debug("keyring probe: could not delete the trial entry: %s", exc)
        if got != secret:
            return KeyringProbe("missing", name, "the keyring returned something else")
        return KeyringProbe("works", name, "a trial set, get and delete succeeded")

    try:
        return _within(timeout, trial)
    except Exception as exc:
        return _failure(exc, found["backend"])


def _keyring_call(
    timeout: float, call: Callable[[Any], T]
) -> tuple[T | None, KeyringProbe | None, str]:
    """``call(backend)`` under a timeout: (result, None, backend) or (None, failure, backend)."""
    found: dict[str, str] = {"backend": "none"}

    def run() -> T | KeyringProbe:
        backend, refused = _platform_backend()
        found["backend"] = _backend_name(backend)
        if refused:
            return KeyringProbe("missing", found["backend"], refused)
        return call(backend)

    try:
        result = _within(timeout, run)
    except Exception as exc:
        return None, _failure(exc, found["backend"]), found["backend"]
    if isinstance(result, KeyringProbe):
        return None, result, found["backend"]
    return result, None, found["backend"]


def _short_backend(name: str) -> str:
    """'keyring.backends.SecretService.Keyring' -> 'SecretService' (for messages)."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[-1] in ("Keyring", "WinVaultKeyring", "DBusKeyring"):
        return parts[-2]
    return parts[-1]


# --- the key file ---------------------------------------------------------------------------


def key_file_path(directory: Path | str) -> Path:
    """Where the key of the store in ``directory`` goes when there is no keyring.

    In the user config folder, apart from the data, so that a copy or backup of the data
    folder alone does not carry its key. ``directory`` may also name a store that is not a
    folder (a Redis URL without its password).
    """
    return _user_config_dir() / "keys" / f"{folder_key_hash(directory)}.key"


def _user_config_dir() -> Path:
    """``platformdirs.user_config_dir("mcp-client-auth")``; on Linux and the BSDs the XDG rule
    itself (``$XDG_CONFIG_HOME`` or ``~/.config``), without importing platformdirs."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        root = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return Path(root) / "mcp-client-auth"
    import platformdirs

    return Path(platformdirs.user_config_dir("mcp-client-auth", appauthor=False))


_KEY_FILE_HEADER = "# mcp-client-auth: the key of the token store in "


# The header line names a folder: a path, never longer than this (PATH_MAX with room to spare).
_KEY_FILE_HEAD_BYTES = 16384


def _store_of_key_file(path: Path) -> str | None:
    """The store a key file says it is for, when its name agrees (the hash of that store).

    Read as the key reader reads it (:func:`.private.open_private`): never through a link, and
    only a regular file (opened without blocking, so a FIFO planted there cannot hang ``logout
    --all`` or ``doctor``); anything else is no key file of ours.
    """
    try:
        fd = open_private(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), what="key file")
    except (OSError, StorageError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _KEY_FILE_HEAD_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        first = head.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not first.startswith(_KEY_FILE_HEADER):
        return None
    store = first[len(_KEY_FILE_HEADER) :]
    return store if folder_key_hash(store) == path.stem else None


def orphan_key_files() -> list[Path]:
    """Key files of store folders that no longer exist (a temporary folder of a test or a
    demo, a store moved away): no store can ever use them again.

    Only a file whose name is the hash of the absolute folder its first line names counts, so
    the key of a live store, or of a store that is not a folder (Redis), is never listed.
    Raises :class:`StorageError` for a key folder that is not safely this user's own (see
    :mod:`.private`): what others may have planted there decides nothing.
    """
    keys_dir = key_file_path("/").parent
    check_private_folder(keys_dir, what="key folder")
    try:
        candidates = sorted(keys_dir.glob("*.key"))
    except OSError:
        return []
    orphans = []
    for path in candidates:
        store = _store_of_key_file(path)
        if store is not None and os.path.isabs(store) and not os.path.lexists(store):
            orphans.append(path)
    return orphans


def remove_orphan_key_files() -> list[Path]:
    """Delete :func:`orphan_key_files` (each checked again just before); return those removed."""
    removed = []
    for path in orphan_key_files():
        store = _store_of_key_file(path)
        if store is None or os.path.lexists(store):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"could not remove the key file {path}: {exc.strerror}") from exc
        removed.append(path)
    return removed


def remove_key(directory: Path | str, *, timeout: float = KEYRING_TIMEOUT) -> None:
    """Forget the key of the store in ``directory``: its keyring entry and its key file.

    For a store that is itself being removed (a demo's temporary store): the entries it
    encrypted become unreadable for good.
    """
    user = str(directory)
    with _cache_lock:
        _cache.pop(user, None)
    _keyring_call(timeout, lambda b: _delete_if_present(b, user))
    try:
        key_file_path(directory).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"could not remove the key file of {directory}: {exc.strerror}") from exc


def _delete_if_present(backend: Any, user: str) -> None:
    if backend.get_password(SERVICE, user) is not None:
        backend.delete_password(SERVICE, user)


def _read_key_file(path: Path) -> tuple[bytes, ...] | None:
    check_private_folder(path.parent, what="key folder")
    try:
        fd = open_private(path, os.O_RDONLY, what="key file")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"could not read the key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        if os.name == "posix":
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():  # a key someone else made is theirs to read
                raise StorageError(
                    f"refusing the key file {path} (owner uid {info.st_uid}, mode "
                    f"{info.st_mode & 0o7777:o}): it belongs to another user, so its key is no "
                    "secret of yours. Fix: move it away; if "
                    "the store has entries, restore its own key (or start over, logging in again)"
                )
            mode = info.st_mode & 0o777
            if mode & 0o077:
                logger.warning(
                    "the key file %s was readable by other users (mode %o); made it 0600",
                    path,
                    mode,
                )
                os.fchmod(fd, 0o600)
        text = file.read().decode("utf-8", errors="replace")  # no valid key: parse_keys says so
    return parse_keys(text, source=f"the key file {path}")


def _write_key_file(path: Path, keys: tuple[bytes, ...], directory: Path | str) -> None:
    try:
        private_folder(path.parent, what="key folder")
    except OSError as exc:
        raise StorageError(
            f"could not create the folder {path.parent} for the store key: {exc.strerror}"
        ) from exc
    text = (
        f"{_KEY_FILE_HEADER}{directory}\n"
        "# Anyone who can read this file can read the tokens in that store. Keep it 0600.\n"
        + "".join(format_key(k) + "\n" for k in keys)
    )
    write_file_atomically(path, text.encode("utf-8"))


# --- choosing the key -------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[str, StoreKey] = {}
_warned: set[str] = set()


def forget_keys() -> None:
    """Drop the keys kept in memory (tests; a long-lived process after a key rotation)."""
    global _backend
    with _cache_lock:
        _cache.clear()
        _warned.clear()
    with _backend_lock:
        _backend = None


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


@dataclass(frozen=True, repr=False)
class _NewKey:
    """How to make a key where there is none: keep it now (``create``) or leave it pending,
    and which key to make (``candidate``, the one a pending store already uses)."""

    create: bool = True
    candidate: tuple[bytes, ...] | None = None

    def keys(self) -> tuple[bytes, ...]:
        return self.candidate or (os.urandom(32),)


def _load_key(
    directory: Path | str,
    require_keyring: bool,
    kept_in: str | None,
    has_entries: bool,
    timeout: float,
    start_over: str | None = None,
    made: _NewKey = _NewKey(),
) -> StoreKey:
    user = str(directory)
    key_file = key_file_path(directory)
    value, probe, backend = _keyring_call(timeout, lambda b: b.get_password(SERVICE, user))
    in_keyring = Protection("keyring", _short_backend(backend))
    if value is not None:
        keys = parse_keys(value, source=f"the keyring entry {SERVICE!r}/{user!r}")
        _drop_duplicate_key_file(key_file, keys)
        return StoreKey(keys, in_keyring)
    if probe is None:  # the keyring answered "no such key": make sure it can hold one
        probe = probe_keyring(timeout=timeout)
    if probe.works:
        from_file = _read_key_file(key_file)
        if from_file is None and has_entries:
            raise _missing_key(directory, kept_in, None, start_over)
        moving = from_file is not None
        if not moving and not made.create:
            return StoreKey(made.keys(), in_keyring, pending=True)
        keys = from_file or made.keys()
        text = ",".join(format_key(k) for k in keys)
        stored, failure, _ = _keyring_call(timeout, lambda b: _set_and_check(b, user, text))
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
    from_file = _read_key_file(key_file)
    if from_file is None:
        if has_entries:
            raise _missing_key(directory, kept_in, probe, start_over)
        from_file = made.keys()
        if not made.create:
            return StoreKey(from_file, Protection("key file", str(key_file), note), pending=True)
        _write_key_file(key_file, from_file, directory)
    return StoreKey(from_file, Protection("key file", str(key_file), note))


def _set_and_check(backend: Any, user: str, text: str) -> bool:
    backend.set_password(SERVICE, user, text)
    return bool(backend.get_password(SERVICE, user) == text)


def _drop_duplicate_key_file(key_file: Path, keys: tuple[bytes, ...]) -> None:
    """Remove a key file left from a fallback once the same key is safe in the keyring."""
    try:
        if _read_key_file(key_file) == keys:
            key_file.unlink()
            logger.info("removed %s: the same key is in the system keyring", key_file)
    except (OSError, StorageError):
        pass
