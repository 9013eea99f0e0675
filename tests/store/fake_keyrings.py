"""Keyring backends that misbehave, loaded through ``PYTHON_KEYRING_BACKEND``.

Each stands for a real failure seen in the wild: a keyring that hangs (an unlock prompt no one
answers), one that raises, and a plaintext one (``keyrings.alt`` is picked silently on some
machines and keeps "secrets" base64-encoded in a file).
"""

from __future__ import annotations

import os
import threading

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordSetError

_never = threading.Event()


class _Chosen(KeyringBackend):
    """Viable only when named in PYTHON_KEYRING_BACKEND, so that keyring's discovery (in
    other tests of the same session) never picks one of these by its priority."""

    @properties.classproperty
    def priority(cls) -> float:
        if os.environ.get("PYTHON_KEYRING_BACKEND", "").endswith("." + cls.__name__):  # type: ignore[attr-defined]
            return 5
        raise RuntimeError("a test backend, only used when chosen explicitly")


class HangingKeyring(_Chosen):
    def get_password(self, service: str, username: str) -> str | None:
        _never.wait(60)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        _never.wait(60)

    def delete_password(self, service: str, username: str) -> None:
        _never.wait(60)


class RaisingKeyring(_Chosen):
    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("the keyring refused to store the secret")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordSetError("the keyring refused")


class PlaintextKeyring(_Chosen):
    """Works, but protects nothing: it must not count as a keyring."""

    stored: dict[tuple[str, str], str] = {}  # noqa: RUF012

    def get_password(self, service: str, username: str) -> str | None:
        return self.stored.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.stored[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.stored.pop((service, username), None)


class OSErrorKeyring(_Chosen):
    """Fails as a Secret Service whose D-Bus socket is gone does: with an OSError."""

    def get_password(self, service: str, username: str) -> str | None:
        raise FileNotFoundError(2, "No such file or directory", "/run/user/1000/bus")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/run/user/1000/bus")

    def delete_password(self, service: str, username: str) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/run/user/1000/bus")
