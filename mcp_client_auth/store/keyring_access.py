"""The system keyring: finding its backend without keyring's discovery, and asking it safely.

``keyring`` is imported only when a key is needed, and its backend discovery (most of it
importing every platform's backend) is skipped: the platform's own backend is loaded directly,
unless the user chose one (``PYTHON_KEYRING_BACKEND``, a ``KEYRING_PROPERTY_*`` variable or a
keyringrc file), which is then honoured. On Linux and the BSDs, when the user chose none,
``keyring`` is not imported at all (its imports are most of a CLI command's start): the Secret
Service is spoken to through ``secretstorage`` directly, finding and making the very items
keyring's backend does (see :mod:`.secret_service`). A keyring counts only when it really
works (see :func:`probe_keyring`), and every call runs under a timeout in a daemon thread, so a
locked or hanging keyring never hangs the caller.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from ..values import Value, set_field

__all__ = [
    "KEYRING_TIMEOUT",
    "SERVICE",
    "KeyringProbe",
    "KeyringTimeout",
    "forget_backend",
    "keyring_backend",
    "keyring_call",
    "platform_backend",
    "probe_keyring",
    "short_backend",
    "within",
]

logger = logging.getLogger("mcp_client_auth.store")

SERVICE = "mcp-client-auth"
KEYRING_TIMEOUT = 3.0
_PROBE_USER = "mcp-client-auth keyring probe"

Verdict = Literal["works", "missing", "locked", "slow"]
T = TypeVar("T")


class KeyringProbe(Value):
    """The verdict on the system keyring: ``works``, ``missing``, ``locked`` or ``slow``.

    ``backend`` is the keyring backend's class (or ``"none"``), ``reason`` one line saying why
    the verdict is what it is, and what to do where there is something to do. A value: see
    :class:`.protection.Protection`.
    """

    __slots__ = ("backend", "reason", "verdict")
    verdict: Verdict
    backend: str
    reason: str

    def __init__(
        self,
        verdict: Verdict,
        backend: str,
        reason: str,
    ) -> None:
        set_field(self, "verdict", verdict)
        set_field(self, "backend", backend)
        set_field(self, "reason", reason)

    @property
    def works(self) -> bool:
        return self.verdict == "works"

    def __str__(self) -> str:
        return f"{self.verdict} ({self.backend}): {self.reason}"


class KeyringTimeout(Exception):
    """A keyring call did not answer in time (an unlock prompt waiting, a hung D-Bus)."""


def within(timeout: float, fn: Callable[[], T]) -> T:
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
        raise KeyringTimeout
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


def platform_backend() -> tuple[Any, str | None]:
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
    return keyring_backend()


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


def keyring_backend() -> tuple[Any, str | None]:
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
    if isinstance(exc, KeyringTimeout):
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
        backend, refused = platform_backend()
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
        return within(timeout, trial)
    except Exception as exc:
        return _failure(exc, found["backend"])


def keyring_call(
    timeout: float, call: Callable[[Any], T]
) -> tuple[T | None, KeyringProbe | None, str]:
    """``call(backend)`` under a timeout: (result, None, backend) or (None, failure, backend)."""
    found: dict[str, str] = {"backend": "none"}

    def run() -> T | KeyringProbe:
        backend, refused = platform_backend()
        found["backend"] = _backend_name(backend)
        if refused:
            return KeyringProbe("missing", found["backend"], refused)
        return call(backend)

    try:
        result = within(timeout, run)
    except Exception as exc:
        return None, _failure(exc, found["backend"]), found["backend"]
    if isinstance(result, KeyringProbe):
        return None, result, found["backend"]
    return result, None, found["backend"]


def short_backend(name: str) -> str:
    """'keyring.backends.SecretService.Keyring' -> 'SecretService' (for messages)."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[-1] in ("Keyring", "WinVaultKeyring", "DBusKeyring"):
        return parts[-2]
    return parts[-1]


def forget_backend() -> None:
    """Find the backend again at the next call (tests; a process whose session changed)."""
    global _backend
    with _backend_lock:
        _backend = None
