"""``status`` and ``logout``, run in-process against a real store and the demo servers.

What is proved: ``status`` writes only to stdout, creates no store where there is none, shows a
login without any secret (text and ``--json`` alike), and with a URL exits 1 when that server
has no usable login; ``logout`` revokes at the server and forgets here, says so on stderr,
exits 0 when there is nothing to do, and 1 (tokens forgotten all the same) when revocation
could not be tried.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from demo_servers import DemoServers

from .inprocess import URL, InProcess


def test_status_with_no_store_creates_nothing(run_cli: InProcess) -> None:
    ran = run_cli("status")
    assert (ran.code, ran.stderr) == (0, "")
    assert ran.stdout == (
        f"Store: {run_cli.cli.home} (not created yet: nothing stored)\n\n"
        "No stored logins; `mcp-client-auth login URL` adds one.\n"
    )
    one = run_cli("status", URL)
    assert one.code == 1 and one.stderr == ""
    assert f"Not logged in to {URL}; run `mcp-client-auth login {URL}`" in one.stdout
    document = json.loads(run_cli("status", "--json").stdout)
    assert document["store"]["exists"] is False and document["servers"] == []
    assert not run_cli.cli.home.exists()


def test_status_with_a_file_where_the_store_folder_goes_says_so(run_cli: InProcess) -> None:
    """A login refuses such a path; status says why too, instead of "not created yet"."""
    home = run_cli.cli.home
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a store\n")
    for args in (("status",), ("status", "--json")):
        ran = run_cli(*args)
        assert (ran.code, ran.stdout) == (1, "")
        assert f"{home} is not a folder" in ran.stderr and "move it away" in ran.stderr
        assert "not created yet" not in ran.stderr
    assert home.read_text() == "not a store\n"


def test_status_shows_the_login_and_no_secret(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    record = run_cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None and record.client is not None
    ran = run_cli("status", demo.mcp_url)
    assert (ran.code, ran.stderr) == (0, "")
    assert f"Store: encrypted files in {run_cli.cli.home}" in ran.stdout
    assert f"  state           logged in\n  issuer          {demo.issuer}\n" in ran.stdout
    assert f"  client id       {record.client.client_id} (dynamic registration" in ran.stdout
    assert "  refresh token   present" in ran.stdout
    document = json.loads(run_cli("status", "--json").stdout)
    [server] = document["servers"]
    assert server["resource"] == demo.mcp_url and server["usable"] is True
    assert server["access_token"]["valid"] is True and server["refresh_token"]["present"]
    assert document["store"]["protection"]["kind"] == "key file"
    for secret in (record.tokens.access_token, record.tokens.refresh_token or "-"):
        assert secret not in ran.output and secret not in json.dumps(document)
    assert run_cli("status", demo.issuer + "/mcp").code == 1  # another server: not logged in


def test_logout_revokes_then_forgets(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    ran = run_cli("logout", demo.mcp_url)
    assert (ran.code, ran.stdout) == (0, "")
    assert ran.stderr == (
        f"✓ Logged out of {demo.mcp_url}: the authorization server revoked the refresh token "
        "and the access token; forgot the tokens here.\n"
    )
    assert demo.authorization_server.stats["revocations"] == 2
    after = run_cli.record(demo.mcp_url)
    assert after is not None and after.tokens is None and after.client is not None
    status = run_cli("status", demo.mcp_url)
    assert status.code == 1 and "logged out: run `mcp-client-auth login" in status.stdout

    again = run_cli("logout", demo.mcp_url)
    assert again.code == 0
    assert again.stderr == f"✓ Already logged out of {demo.mcp_url}; nothing to revoke.\n"
    dropped = run_cli("logout", demo.mcp_url, "--forget-client")
    assert dropped.stderr == (
        f"✓ Already logged out of {demo.mcp_url}; dropped the client registration.\n"
    )
    assert run_cli.record(demo.mcp_url) is None
    gone = run_cli("logout", demo.mcp_url)
    assert (gone.code, gone.stderr) == (0, f"Not logged in to {demo.mcp_url}; nothing to do.\n")


def test_logout_with_nothing_stored(run_cli: InProcess) -> None:
    for argv in (("logout", URL), ("logout", "--all")):
        ran = run_cli(*argv)
        assert (ran.code, ran.stdout, ran.stderr) == (
            0,
            "",
            "Nothing stored, so nothing to log out of.\n",
        )
    assert not run_cli.cli.home.exists()


def test_logout_all(run_cli: InProcess, start_demo: Callable[..., DemoServers]) -> None:
    first, second = start_demo(), start_demo()
    for demo in (first, second):
        assert run_cli.login(demo.mcp_url).code == 0
    ran = run_cli("logout", "--all", "--forget-client")
    assert (ran.code, ran.stdout) == (0, "")
    for demo in (first, second):
        assert f"✓ Logged out of {demo.mcp_url}: " in ran.stderr
        assert run_cli.record(demo.mcp_url) is None


def test_logout_when_revocation_fails_still_forgets(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    demo.stop()  # the authorization server is gone: revocation cannot even be tried
    ran = run_cli("logout", demo.mcp_url)
    assert (ran.code, ran.stdout) == (1, "")
    [line] = ran.stderr.splitlines()
    assert line.startswith(f"! Logged out of {demo.mcp_url} here, but revoking failed (")
    assert "Still valid on the server until" in line
    record = run_cli.record(demo.mcp_url)
    assert record is not None and record.tokens is None
