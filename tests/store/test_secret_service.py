"""The store key in the Secret Service without ``keyring``: the same items, the same verdicts.

On Linux with no keyring backend configured, the key is read and written through
``secretstorage`` directly (``import keyring`` is most of a CLI command's start). Proved here
against a real gnome-keyring: keys written by keyring's SecretService backend are found and
the other way round, the items look exactly like keyring's, a process reading a key never
imports keyring, a configured backend still goes through keyring, and a locked, unreachable or
hanging Secret Service gets the same verdict either way, without hanging.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import TokenStore, keyring_access, keys
from mcp_client_auth.store.codec import format_key
from mcp_client_auth.store.default import store_directory
from mcp_client_auth.store.secret_service import APPLICATION, SecretServiceKeyring
from mcp_client_auth.tokens import ServerRecord, TokenSet

if TYPE_CHECKING:
    from .conftest import SecretService

URL = "https://mcp.example.com/mcp"
KEYRING_CLASS = "keyring.backends.SecretService.Keyring"

pytestmark = pytest.mark.integration


def keyring_backend() -> Any:
    """keyring's own SecretService backend, as an application using keyring has it."""
    from keyring.backends import SecretService

    return SecretService.Keyring()


def items(username: str) -> list[tuple[str, dict[str, str]]]:
    """(label, attributes) of every item of our service for ``username``, read by secretstorage
    from the Secret Service this process points at (``SecretService.use``).

    ``xdg:schema`` is left out: neither keyring nor this project sets it, but gnome-keyring adds
    it to items of both at a moment of its own choosing (absent right after a write, present a
    second later, in the CI image). Lookups by the other attributes find the item either way.
    """
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        query = {"service": keys.SERVICE, "username": username}
        return [
            (item.get_label(), _without_schema(item.get_attributes()))
            for item in collection.search_items(query)
        ]
    finally:
        connection.close()


def _without_schema(attributes: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in attributes.items() if name != "xdg:schema"}


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from mcp_client_auth.store import TokenStore
    async def main():
        store = TokenStore.default(sys.argv[1])
        record = await store.get(sys.argv[2])
        print(json.dumps({
            "kind": store.protection.kind,
            "where": store.protection.where,
            "token": record.tokens.access_token if record and record.tokens else None,
            "keyring_modules": sorted(m for m in sys.modules if m.split(".")[0] == "keyring"),
            "jaraco": any(m.startswith("jaraco") for m in sys.modules),
            "secretstorage": "secretstorage" in sys.modules,
        }))
    asyncio.run(main())
    """
)


def read_in_child(folder: Path, **env: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), URL],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def store_with_a_record(folder: Path) -> TokenStore:
    store = TokenStore.default(folder, require_keyring=True)
    await store.put(ServerRecord(URL, tokens=TokenSet("access-1", refresh_token="r")))
    return store


# --- the same items as keyring's backend ------------------------------------------------------


async def test_a_key_written_by_keyring_is_read_without_keyring(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    key = os.urandom(32)
    keyring_backend().set_password(keys.SERVICE, str(folder), format_key(key))

    store = TokenStore.default(folder, require_keyring=True)
    assert isinstance(keyring_access.platform_backend()[0], SecretServiceKeyring)  # the direct path
    assert store.protection.kind == "keyring" and store.protection.where == "SecretService"
    assert keys.load_key(folder).keys == (key,)
    assert not (isolated_home / ".config" / "mcp-client-auth" / "keys").exists()


async def test_a_key_written_without_keyring_is_read_by_keyring(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    store = await store_with_a_record(folder)
    assert isinstance(keyring_access.platform_backend()[0], SecretServiceKeyring)
    assert store.protection.kind == "keyring"
    [key] = keys.load_key(folder).keys
    assert keyring_backend().get_password(keys.SERVICE, str(folder)) == format_key(key)

    # exactly keyring's item: its application attribute, its label, one item per key
    expected = {"application": APPLICATION, "service": keys.SERVICE, "username": str(folder)}
    [(label, attributes)] = items(str(folder))
    assert attributes == expected
    assert label == f"Password for '{folder}' on '{keys.SERVICE}'"
    keyring_backend().set_password(keys.SERVICE, str(folder), "replaced by keyring")
    assert items(str(folder)) == [(label, expected)]  # replaced, not added


def test_application_is_keyrings_own() -> None:
    """The ``application`` attribute is keyring's SecretService appid, whatever its version."""
    from keyring.backends import SecretService

    assert SecretService.Keyring.appid == APPLICATION


def test_direct_set_get_delete(
    secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    direct = SecretServiceKeyring()
    user = f"direct trial {os.getpid()}"
    assert direct.get_password(keys.SERVICE, user) is None
    direct.set_password(keys.SERVICE, user, "first")
    direct.set_password(keys.SERVICE, user, "second")  # replaces
    assert direct.get_password(keys.SERVICE, user) == "second"
    assert len(items(user)) == 1
    direct.delete_password(keys.SERVICE, user)
    assert direct.get_password(keys.SERVICE, user) is None
    assert keyring_backend().get_password(keys.SERVICE, user) is None
    with pytest.raises(LookupError):
        direct.delete_password(keys.SERVICE, user)


# --- no keyring import, unless the user chose a backend -------------------------------------


async def test_a_process_reading_its_key_does_not_import_keyring(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    await store_with_a_record(folder)

    child = read_in_child(folder)
    assert (child["kind"], child["where"]) == ("keyring", "SecretService")
    assert child["token"] == "access-1"
    assert child["keyring_modules"] == [] and not child["jaraco"]
    assert child["secretstorage"]  # the key came from the Secret Service, through secretstorage


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHON_KEYRING_BACKEND": KEYRING_CLASS},
        {"KEYRING_PROPERTY_SCHEME": "default"},  # a backend property: keyring's to apply
    ],
    ids=["PYTHON_KEYRING_BACKEND", "KEYRING_PROPERTY"],
)
async def test_a_configured_backend_still_goes_through_keyring(
    secret_service: SecretService,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
) -> None:
    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    await store_with_a_record(folder)  # written the direct way

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    keys.forget_keys()
    backend, refused = keyring_access.platform_backend()
    assert f"{type(backend).__module__}.{type(backend).__qualname__}" == KEYRING_CLASS
    assert refused is None
    child = read_in_child(folder)
    assert (child["kind"], child["token"]) == ("keyring", "access-1")
    assert "keyring.backends.SecretService" in child["keyring_modules"]


async def test_a_keyringrc_still_goes_through_keyring(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    await store_with_a_record(folder)
    rc = isolated_home / ".config" / "python_keyring" / "keyringrc.cfg"
    rc.parent.mkdir(parents=True)
    rc.write_text(f"[backend]\ndefault-keyring={KEYRING_CLASS}\n")
    child = read_in_child(folder)
    assert (child["kind"], child["token"]) == ("keyring", "access-1")
    assert "keyring.backends.SecretService" in child["keyring_modules"]


# --- one D-Bus connection per call, none for a viability check --------------------------------


async def test_reading_a_key_opens_one_dbus_connection(
    secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secretstorage

    secret_service.use(monkeypatch)
    folder = store_directory(isolated_home / "store")
    await store_with_a_record(folder)
    keys.forget_keys()
    opened: list[object] = []
    real = secretstorage.dbus_init

    def counting() -> Any:
        opened.append(None)
        return real()

    monkeypatch.setattr(secretstorage, "dbus_init", counting)
    assert keys.load_key(folder).protection.kind == "keyring"
    assert len(opened) == 1


# --- the same verdicts as through keyring ----------------------------------------------------


def both_ways(monkeypatch: pytest.MonkeyPatch) -> tuple[keys.KeyringProbe, keys.KeyringProbe]:
    """The probe through the direct path, then through keyring's own backend loaded as the
    store loaded it before the direct path (the platform's backend, no configured one): a
    ``KEYRING_PROPERTY_*`` variable sends the store through keyring, and this one sets an
    attribute nothing reads."""
    loaded: list[str] = []
    real = keyring_access.keyring_backend

    def through_keyring_only() -> Any:
        loaded.append("keyring")
        return real()

    monkeypatch.setattr(keyring_access, "keyring_backend", through_keyring_only)
    keys.forget_keys()
    direct = keys.probe_keyring()
    assert loaded == []
    monkeypatch.setenv("KEYRING_PROPERTY_MCP_CLIENT_AUTH_TEST", "1")
    keys.forget_keys()
    through_keyring = keys.probe_keyring()
    assert loaded == ["keyring"]
    monkeypatch.delenv("KEYRING_PROPERTY_MCP_CLIENT_AUTH_TEST")
    keys.forget_keys()
    return direct, through_keyring


def test_same_verdict_on_a_working_keyring(
    secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_service.use(monkeypatch)
    direct, through_keyring = both_ways(monkeypatch)
    assert direct == through_keyring
    assert direct.works and direct.backend == KEYRING_CLASS


def test_same_verdict_on_a_locked_keyring(
    locked_secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked_secret_service.use(monkeypatch)
    direct, through_keyring = both_ways(monkeypatch)
    assert direct == through_keyring
    assert direct.verdict == "locked" and "Failed to unlock the collection!" in direct.reason


@pytest.mark.parametrize("what", ["no socket", "refused"])
def test_same_verdict_on_a_bus_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    path = tmp_path / "bus"
    if what == "refused":  # a socket file with no one listening
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={path}")
    direct, through_keyring = both_ways(monkeypatch)
    assert direct == through_keyring
    assert direct.verdict == "missing" and direct.backend == KEYRING_CLASS


BARE_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def test_same_verdict_without_a_secret_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A D-Bus session with no Secret Service on it, none running and none activatable (a
    session bus with no service folders: the system's would start gnome-keyring)."""
    from .conftest import _daemon_env, _require, _stop

    config = tmp_path / "bus.conf"
    config.write_text(BARE_BUS.format(path=tmp_path / "bare-bus"))
    bus = subprocess.Popen(
        [_require("dbus-daemon"), f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_daemon_env(tmp_path),
    )
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        direct, through_keyring = both_ways(monkeypatch)
    finally:
        _stop(bus)
    assert direct == through_keyring
    assert direct.verdict == "missing" and "neither running nor activatable" in direct.reason


# --- a Secret Service that never answers ------------------------------------------------------


@pytest.fixture
def silent_bus(tmp_path: Path) -> Iterator[str]:
    """A D-Bus address that lets clients in and then never answers a message.

    It accepts the client's authentication (so jeepney's own 1 s authentication timeout does
    not end the wait) and stays silent after: every call would wait forever.
    """
    path = tmp_path / "silent-bus"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            data = b""
            while b"AUTH" not in data:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"unix:path={path}"
    finally:
        stop.set()
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)


@pytest.mark.timeout(40)  # each call would wait forever: only the store's timeout ends it
async def test_a_silent_bus_does_not_hang_the_direct_path(
    silent_bus: str, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", silent_bus)
    probe = keys.probe_keyring(timeout=0.5)
    assert (probe.verdict, probe.backend) == ("slow", KEYRING_CLASS)
    assert isinstance(keyring_access.platform_backend()[0], SecretServiceKeyring)
    store = TokenStore.default(isolated_home / "store")  # the real 3 s timeout
    assert store.protection.kind == "key file" and "slow" in store.protection.note
    with pytest.raises(StorageError, match="require_keyring"):
        TokenStore.default(isolated_home / "strict", require_keyring=True)
