"""``doctor``, usage errors and error manners.

What is proved: ``doctor`` reports versions, the keyring verdict, the store folder and its
modes, where the key is and how many entries are (un)readable, and exits 1 with the fix when
something is wrong; usage errors exit 2; errors are one line, tracebacks only with --debug;
colour appears on a terminal only.
"""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from demo_servers import DemoServers

from mcp_client_auth import TokenStore
from mcp_client_auth.store.names import COLLECTION

from .conftest import CLI, console_script

pytestmark = pytest.mark.integration

URL = "http://127.0.0.1:9/mcp"


def test_doctor_without_a_store(cli: CLI) -> None:
    run = cli("doctor")
    assert run.returncode == 0, run.output
    for expected in ("mcp-client-auth ", "Python", "httpx", "keyring", "Keyring: missing"):
        assert expected in run.stdout, (expected, run.stdout)
    assert "not created yet" in run.stdout
    key_file = TokenStore.default_key_file(cli.home)
    assert key_file.parent == cli.config / "mcp-client-auth" / "keys"
    assert f"Key: none yet; the first login makes one and keeps it in the key file {key_file}" in (
        run.stdout
    )
    assert not cli.home.exists() and not key_file.exists()

    run = cli("doctor", env={"MCP_CLIENT_AUTH_KEY": Fernet.generate_key().decode()})
    assert "Key: none yet; it will come from the MCP_CLIENT_AUTH_KEY environment" in run.stdout


def test_doctor_reports_a_key_folder_others_may_write_to(cli: CLI) -> None:
    """The key files' listing refuses such a folder (what others planted there decides
    nothing): ``doctor`` says so as a problem with the fix, and goes on with its report."""
    folder = cli.config / "mcp-client-auth" / "keys"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    run = cli("doctor")
    assert run.returncode == 1, run.output
    assert "Key files: refusing the key folder" in run.stdout, run.stdout
    assert f"chmod 700 {folder}" in run.stdout and "Store folder:" in run.stdout


def test_doctor_with_a_dbus_address_that_leads_nowhere(cli: CLI, tmp_path: Path) -> None:
    run = cli("doctor", env={"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"})
    assert run.returncode == 0, run.output
    assert "Keyring: missing (keyring.backends.SecretService.Keyring)" in run.stdout
    assert "cannot be reached" in run.stdout and "(none)" not in run.stdout


def test_doctor_with_a_key_file(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    run = cli("doctor")
    assert run.returncode == 0, run.output
    assert "Keyring: missing" in run.stdout and "D-Bus" in run.stdout
    assert f"Store folder: {cli.home} (folders 0700, files 0600" in run.stdout
    key_files = list((cli.config / "mcp-client-auth" / "keys").iterdir())
    assert len(key_files) == 1
    assert f"Key: in the key file {key_files[0]} (0600), protected only by file" in run.stdout
    assert "Entries: 1 stored, 0 unreadable" in run.stdout
    assert "Works, with the warnings above." in run.stdout


def test_doctor_finds_wrong_modes_and_unreadable_entries(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    os.chmod(cli.home, 0o755)
    run = cli("doctor")
    assert run.returncode == 1
    assert f"{cli.home}: folder mode 755, should be 700" in run.stdout
    assert "Fix: chmod -R u=rwX,go=" in run.stdout
    os.chmod(cli.home, 0o700)

    entries = [p for p in (cli.home / "entries").rglob("*") if p.is_file()]
    assert len(entries) == 1
    entries[0].write_bytes(b"not a Fernet token")
    run = cli("doctor")
    assert run.returncode == 1, run.output
    assert "Entries: 0 stored, 1 unreadable" in run.stdout
    assert "delete those files" in run.stdout
    assert "1 problem(s) found" in run.stdout


def test_an_entry_that_is_not_a_record_is_set_aside_and_counted(
    cli: CLI, demo: DemoServers, start_demo: Callable[..., DemoServers]
) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    other = start_demo().mcp_url
    assert cli.login(other).returncode == 0

    async def damage() -> None:  # it decrypts, but its tokens have no access token
        store = TokenStore.default(cli.home)
        value = {"resource": demo.mcp_url, "tokens": {"refresh_token": "r"}}
        await store.kv.put(demo.mcp_url, value, collection=COLLECTION)

    asyncio.run(damage())
    run = cli("doctor")
    assert run.returncode == 1, run.output
    assert "Entries: 1 stored, 1 unreadable" in run.stdout
    assert "delete those files" in run.stdout
    [aside] = [p for p in (cli.home / "entries").rglob("*") if ".unreadable-" in p.name]
    content = aside.read_bytes()

    run = cli("token", demo.mcp_url)
    assert (run.returncode, run.stdout) == (1, "")
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert f"mcp-client-auth login {demo.mcp_url}" in run.stderr
    assert cli("token", other).returncode == 0

    assert cli.login(demo.mcp_url).returncode == 0  # the new login...
    assert aside.read_bytes() == content  # ...kept what was set aside
    run = cli("doctor")
    assert "Entries: 2 stored, 1 unreadable" in run.stdout


def test_token_folds_the_set_aside_warning_into_its_one_line(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    [entry] = [p for p in (cli.home / "entries").rglob("*") if p.is_file()]
    entry.write_bytes(b"not a Fernet token")
    run = cli("token", demo.mcp_url)
    assert (run.returncode, run.stdout) == (1, "")
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert "set aside" in run.stderr and f"login {demo.mcp_url}" in run.stderr
    debug = cli("--debug", "token", demo.mcp_url)
    assert debug.returncode == 1  # nothing left to set aside: plainly not logged in
    assert "not logged in" in debug.stderr


def test_doctor_with_the_key_in_the_environment(cli: CLI, demo: DemoServers) -> None:
    env = {"MCP_CLIENT_AUTH_KEY": Fernet.generate_key().decode()}
    run = cli("doctor", env=env)
    assert run.returncode == 0
    run = cli("status", env=env)  # creates nothing: there is no store yet
    assert "not created yet" in run.stdout
    cli.env.update(env)
    assert cli.login(demo.mcp_url).returncode == 0
    run = cli("doctor")
    assert run.returncode == 0, run.output
    assert "Key: encrypted; key from the MCP_CLIENT_AUTH_KEY environment variable" in run.stdout
    assert "Not needed: the store key comes from the environment." in run.stdout
    assert not (cli.config / "mcp-client-auth" / "keys").exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nonsense"],
        ["token"],
        ["token", "not-a-url"],
        ["token", URL, "--bogus"],
        ["status", "ftp://example.com/x"],
        ["logout"],
        ["logout", URL, "--all"],
        ["login", URL, "--client-secret-stdin"],
        ["login", URL, "--paste", "--device"],
        ["login", URL, "--port", "0"],
        ["login", URL, "--port", "many"],
        ["login", ""],
        ["token", ""],
        ["status", " "],
        ["login", "mcp.example.com/mcp"],
        ["--store", "", "status"],
        ["login", URL, "--issuer", "http://as.example.com"],  # plain http off loopback
        ["login", URL, "--issuer", ""],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(cli: CLI, args: list[str]) -> None:
    """Every bad argument: one line on stderr that says what is wrong and where help is."""
    run = cli(*args)
    assert run.returncode == 2, run.output
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith("error: "), run.stderr
    assert "--help" in run.stderr


def test_errors_are_one_line_and_tracebacks_need_debug(cli: CLI) -> None:
    run = cli("login", URL, "--paste")  # nothing listens on port 9
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1, run.stderr
    debug = cli("--debug", "login", URL, "--paste")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_colour_on_a_terminal_only(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0  # (the CLI fixture checks: no colour)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*console_script(), "status"],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=cli.env,
            cwd=Path(cli.home).parent,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode()
    assert "\x1b[1m" + demo.mcp_url in shown
    no_colour = subprocess.run(
        [*console_script(), "status"],
        env={**cli.env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "\x1b[" not in no_colour.stdout


def test_store_option_beats_the_environment(cli: CLI, demo: DemoServers) -> None:
    other = cli.home.parent / "other-store"
    run = cli.login(demo.mcp_url, "--store", str(other))
    assert run.returncode == 0, run.output
    assert f"encrypted files in {other}" in run.stderr
    assert not cli.home.exists()  # $MCP_CLIENT_AUTH_HOME was not used
    for args in (["--store", str(other), "status"], ["status", "--store", str(other)]):
        shown = cli(*args)
        assert shown.returncode == 0 and demo.mcp_url in shown.stdout, shown.output
    assert cli("token", demo.mcp_url, "--store", str(other)).returncode == 0
    assert cli("token", demo.mcp_url).returncode == 1  # the default store holds nothing
