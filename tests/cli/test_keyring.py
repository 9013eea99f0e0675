"""The tool with a real system keyring (gnome-keyring on a private D-Bus session).

What is proved: with a working keyring the key goes there and nowhere on disk, ``login``,
``status`` and ``doctor`` say so, and ``doctor`` passes with no warning, and a command reading
the key never imports ``keyring`` (no backend configured: ``secretstorage`` reads it directly);
with a locked keyring ``doctor`` says it is locked and what to do.
"""

from __future__ import annotations

import pytest
from demo_servers import DemoServers

from .conftest import CLI, SecretService

pytestmark = pytest.mark.integration


def test_key_in_the_keyring(
    cli: CLI, demo: DemoServers, secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.use_keyring(secret_service, monkeypatch)
    before = cli("doctor")
    assert "Key: none yet; the first login makes one and keeps it in " in before.stdout
    assert "keyring.backends.SecretService.Keyring" in before.stdout
    assert not cli.home.exists()
    run = cli.login(demo.mcp_url)
    assert run.returncode == 0, run.output
    assert "key in the system keyring (SecretService)" in run.stderr
    assert "file permissions" not in run.stderr
    assert not (cli.config / "mcp-client-auth" / "keys").exists()  # nowhere on disk
    assert secret_service.lookup(str(cli.home))  # ...but in the keyring

    status = cli("status")
    assert "Key:   encrypted; key in the system keyring (SecretService)" in status.stdout
    token = cli("token", demo.mcp_url)
    assert token.returncode == 0 and token.stderr == ""
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None
    assert token.stdout == record.tokens.access_token + "\n"
    timed = cli("token", demo.mcp_url, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert timed.returncode == 0 and timed.stdout == token.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines()}
    assert "secretstorage" in imported  # the key came from the Secret Service...
    assert not {m for m in imported if m.split(".")[0] in ("keyring", "jaraco")}  # ...not keyring

    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.output
    assert "✓ Keyring: works (keyring.backends.SecretService.Keyring)" in doctor.stdout
    assert "✓ Key: in the system keyring (SecretService)" in doctor.stdout
    assert "Entries: 1 stored, 0 unreadable" in doctor.stdout
    assert "Everything looks right." in doctor.stdout


def test_doctor_with_a_locked_keyring(
    cli: CLI, locked_secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.use_keyring(locked_secret_service, monkeypatch)
    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.output  # nothing stored yet: a warning, not a fault
    assert "! Keyring: locked" in doctor.stdout
    assert "Unlock the keyring" in doctor.stdout
