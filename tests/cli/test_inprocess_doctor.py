"""``doctor``, run in-process against a real store in this test's folder (no keyring here).

What is proved: the report is on stdout and stderr stays empty; with no store it says where the
store and its key will be, warns about the missing keyring and exits 0; a store whose folder or
files other users could read is a problem with its fix, exit 1; the key from the environment
the run is handed is reported as such; unreadable entries are listed as set aside.
"""

from __future__ import annotations

import asyncio
import time

from cryptography.fernet import Fernet

from mcp_client_auth import ServerRecord, TokenSet, TokenStore

from .inprocess import URL, InProcess


def test_no_store_yet(run_cli: InProcess) -> None:
    ran = run_cli("doctor")
    assert (ran.code, ran.stderr) == (0, "")
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("mcp-client-auth ") and lines[1].startswith("  Python ")
    assert any(line.startswith("! Keyring: ") for line in lines), ran.stdout
    assert (
        f"✓ Store folder: {run_cli.cli.home} (not created yet; the first login creates it, 0700)"
        in lines
    )
    assert any(line.startswith("! Key: none yet; the first login makes one") for line in lines)
    assert lines[-1] == "Works, with the warnings above."
    assert not run_cli.cli.home.exists()


def test_the_key_from_the_environment(run_cli: InProcess) -> None:
    key = Fernet.generate_key().decode()
    ran = run_cli("doctor", env={"MCP_CLIENT_AUTH_KEY": key})
    assert ran.code == 0
    assert "Not needed: the store key comes from the environment." in ran.stdout
    assert "✓ Key: none yet; it will come from the MCP_CLIENT_AUTH_KEY environment variable" in (
        ran.stdout
    )
    assert key not in ran.output


def test_a_store_others_can_read_is_a_problem(run_cli: InProcess) -> None:
    run_cli.put(ServerRecord(URL, tokens=TokenSet("at-1", expires_at=time.time() + 60)))
    assert run_cli("doctor").code == 0
    run_cli.cli.home.chmod(0o755)
    ran = run_cli("doctor")
    assert (ran.code, ran.stderr) == (1, "")
    assert (
        f"✗ Store folder: {run_cli.cli.home}: permissions are wrong, so other users may read it"
        in ran.stdout
    )
    assert f"    {run_cli.cli.home}: folder mode 755, should be 700" in ran.stdout
    assert f"    Fix: chmod -R u=rwX,go= {run_cli.cli.home}  (folders 0700, files 0600)" in (
        ran.stdout
    )
    assert ran.stdout.splitlines()[-1] == "1 problem(s) found; see the fixes above."


def test_unreadable_entries_are_listed(run_cli: InProcess) -> None:
    run_cli.put(ServerRecord(URL, tokens=TokenSet("at-1", expires_at=time.time() + 60)))
    [entry] = [p for p in (run_cli.cli.home / "entries").rglob("*") if p.is_file()]
    entry.write_bytes(b"not a Fernet token")
    asyncio.run(TokenStore.default(run_cli.cli.home).records())  # sets it aside
    ran = run_cli("doctor")
    assert ran.code == 1
    assert (
        "✗ Entries: 0 stored, 1 unreadable (set aside, not deleted; their servers ask for a "
        "new login)" in ran.stdout
    )
    assert "    Fix: once you no longer need them, delete those files." in ran.stdout


def test_a_file_where_the_store_folder_goes_is_a_problem(run_cli: InProcess) -> None:
    """A login would refuse it ("not a folder"): doctor says so beforehand, not that the
    folder is simply not made yet."""
    home = run_cli.cli.home
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a store\n")
    ran = run_cli("doctor")
    assert (ran.code, ran.stderr) == (1, "")
    assert f"✗ Store folder: {home} is not a folder" in ran.stdout
    assert "not created yet" not in ran.stdout
    assert home.read_text() == "not a store\n"
