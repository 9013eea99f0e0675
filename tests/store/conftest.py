"""Fixtures for the store tests: an isolated home, and real Secret Service keyrings.

``redis_server`` / ``redis_url``: a real ``redis-server`` on 127.0.0.1 (``redis_server.py``).

The keyring tests run against the real thing: a private ``dbus-daemon --session`` and a
``gnome-keyring-daemon`` on it, one unlocked and one locked, each with its own HOME. They need
the Debian packages ``gnome-keyring``, ``dbus-daemon`` and ``libsecret-tools``; when those are
missing the tests FAIL with a message saying what to install (they do not skip: a keyring test
that silently does not run proves nothing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mcp_client_auth.store import keys

from .redis_server import RedisServer, start_redis_server

HERE = Path(__file__).parent
APT_HINT = (
    "the keyring tests need a real Secret Service: apt-get install -y gnome-keyring "
    "dbus-daemon libsecret-tools"
)
_STORE_ENV = (
    "MCP_CLIENT_AUTH_KEY",
    "MCP_CLIENT_AUTH_HOME",
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own HOME, no keyring (no D-Bus) and no key in memory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in _STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    keys.forget_keys()
    yield home
    keys.forget_keys()


@dataclass
class SecretService:
    """A running private D-Bus session with a gnome-keyring-daemon on it."""

    address: str
    home: Path

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this process (and the children it starts) at this keyring."""
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", self.address)
        keys.forget_keys()

    def lookup(self, username: str) -> str | None:
        """The secret stored for ``username`` under our service, read with secret-tool."""
        out = subprocess.run(
            [_require("secret-tool"), "lookup", "service", keys.SERVICE, "username", username],
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.address},
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout or None


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} not found: {APT_HINT}", pytrace=False)
    return path


def _start_bus(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    bus = subprocess.Popen(
        [_require("dbus-daemon"), "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()
    if not address:
        bus.kill()
        pytest.fail(f"dbus-daemon printed no address: {APT_HINT}", pytrace=False)
    return bus, address


def _start_keyring(env: dict[str, str], password: str | None) -> subprocess.Popen[str]:
    argv = [_require("gnome-keyring-daemon"), "--foreground", "--components=secrets"]
    if password is not None:
        argv.append("--unlock")
    daemon = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert daemon.stdin is not None and daemon.stdout is not None
    if password is not None:
        daemon.stdin.write(password)
    daemon.stdin.close()
    daemon.stdout.readline()  # GNOME_KEYRING_CONTROL=...: printed once it serves the bus
    return daemon


def _wait_for(address: str, expected: str) -> None:
    """Wait (growing back-off, 90 s at most: each try starts a Python, which a busy 2-core
    machine can make slow) until the keyring answers with ``expected``."""
    deadline = time.monotonic() + 90
    delay = 0.05
    probe = None
    while time.monotonic() < deadline:
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from mcp_client_auth.store import keys; print(keys.probe_keyring().verdict)",
                ],
                env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            probe = "(the probe took over 60 s)"
            continue
        probe = out.stdout.strip()
        if probe == expected:
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    pytest.fail(f"the test keyring did not become {expected!r} (last: {probe!r}); {APT_HINT}")


def _stop(*processes: subprocess.Popen[str]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _daemon_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_"))}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """An unlocked gnome-keyring on a private D-Bus session, for the whole test session."""
    home = tmp_path_factory.mktemp("keyring-home")
    env = _daemon_env(home)
    bus, address = _start_bus(env)
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = _start_keyring(env, password="ci-keyring-pass")
    try:
        _wait_for(address, "works")
        yield SecretService(address, home)
    finally:
        _stop(daemon, bus)


@pytest.fixture(scope="session")
def locked_secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """A gnome-keyring whose login keyring exists but is locked (no password given)."""
    home = tmp_path_factory.mktemp("locked-keyring-home")
    env = _daemon_env(home)
    bus, address = _start_bus(env)
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    first = _start_keyring(env, password="locked-pass")  # creates the login keyring
    try:
        _wait_for(address, "works")
    finally:
        _stop(first)
    daemon = _start_keyring(env, password=None)  # same keyring, now never unlocked
    try:
        _wait_for(address, "locked")
        yield SecretService(address, home)
    finally:
        _stop(daemon, bus)


@pytest.fixture
def fake_keyrings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make tests/store/fake_keyrings.py importable by keyring (PYTHON_KEYRING_BACKEND)."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 for the whole session (killed at teardown)."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
