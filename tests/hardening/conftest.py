"""Fixtures for the hardening tests: an isolated home and store key, no terminal on stdin."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

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
