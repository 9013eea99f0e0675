"""Fixtures for the hardening tests: an isolated home and store key, no terminal on stdin."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_client_auth.store import keys

_STORE_ENV = (
    "MCP_CLIENT_AUTH_KEY",
    "MCP_CLIENT_AUTH_HOME",
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "BROWSER",
)
# A fixed Fernet key: the disk store takes it from the environment, no keyring involved.
STORE_KEY = "1Yo5a1CWlZ0FuDNV9VXc8U3kI0zzVbP5e4P1IY2mGJ8="


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test: its own HOME and store folder, the store key in the environment, no stdin."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in _STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", STORE_KEY)
    monkeypatch.setenv("MCP_CLIENT_AUTH_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    keys.forget_keys()
    yield home
    keys.forget_keys()


_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", None}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may resolve a name that is not loopback: the fake servers' names
    (mcp.example.com, auth.example.com, evil.example) only ever exist behind MockTransport or
    pytest-httpx, and a lookup of one means a request was about to leave the machine."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK_NAMES and not str(name).startswith("127."):
            raise OSError(f"hardening tests stay on loopback: refused to resolve {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
