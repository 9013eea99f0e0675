"""``token``, run in-process against a real store in this test's folder and the demo servers.

What is proved: a valid stored token is the whole of stdout (with ``--header``, the header
line) and stderr stays empty; every way there is no usable token (never logged in, expired
with no refresh token, DPoP-bound, an entry that had to be set aside, a grant the server
revoked, a refresh it refuses) is exit 1, nothing on stdout and one line on stderr that names
the login command; an expired token with a refresh token is refreshed at the authorization
server.
"""

from __future__ import annotations

import time
from dataclasses import replace

from demo_servers import DemoServers

from mcp_client_auth import ServerRecord, TokenSet

from .inprocess import URL, InProcess

LOGIN = f"run `mcp-client-auth login {URL}`"


def stored(run_cli: InProcess, **token: object) -> TokenSet:
    tokens = TokenSet("at-" + "x" * 40, **token)  # type: ignore[arg-type]
    run_cli.put(ServerRecord(URL, issuer="https://as.example.com", tokens=tokens))
    return tokens


def test_a_valid_token_is_the_whole_output(run_cli: InProcess) -> None:
    tokens = stored(run_cli, expires_at=time.time() + 3600, refresh_token="rt-y")
    ran = run_cli("token", URL)
    assert (ran.code, ran.stdout, ran.stderr) == (0, tokens.access_token + "\n", "")
    header = run_cli("token", "--header", URL)
    assert header.stdout == f"Authorization: Bearer {tokens.access_token}\n"
    assert header.stderr == ""


def test_not_logged_in(run_cli: InProcess) -> None:
    ran = run_cli("token", URL)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == f"error: not logged in to {URL}; {LOGIN}"
    other = run_cli("token", URL, "--store", str(run_cli.cli.home.parent / "other"))
    assert f"mcp-client-auth login --store {run_cli.cli.home.parent / 'other'} {URL}" in other.error


def test_expired_without_a_refresh_token(run_cli: InProcess) -> None:
    stored(run_cli, expires_at=time.time() - 10)
    ran = run_cli("token", URL)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == (
        f"error: the access token for {URL} has expired and there is no refresh token; {LOGIN}"
    )


def test_a_dpop_bound_token_is_not_handed_out(run_cli: InProcess) -> None:
    tokens = stored(run_cli, token_type="DPoP", expires_at=time.time() + 3600)
    ran = run_cli("token", URL)
    assert (ran.code, ran.stdout) == (1, "")
    assert "is DPoP-bound (RFC 9449)" in ran.error and "for a bearer token" in ran.error
    assert tokens.access_token not in ran.output


def test_an_entry_set_aside_is_said_in_the_one_line(run_cli: InProcess) -> None:
    stored(run_cli, expires_at=time.time() + 3600)
    [entry] = [p for p in (run_cli.cli.home / "entries").rglob("*") if p.is_file()]
    entry.write_bytes(b"not a Fernet token")
    ran = run_cli("token", URL)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == (
        f"error: the stored login for {URL} could not be read, so it was set aside "
        f"(`mcp-client-auth doctor` lists it); {LOGIN}"
    )
    aside = [p for p in (run_cli.cli.home / "entries").rglob("*") if ".unreadable-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == b"not a Fernet token"
    assert "1 unreadable" in run_cli("doctor").stdout


def test_under_debug_the_store_warning_shows_too(run_cli: InProcess) -> None:
    stored(run_cli, expires_at=time.time() + 3600)
    [entry] = [p for p in (run_cli.cli.home / "entries").rglob("*") if p.is_file()]
    entry.write_bytes(b"not a Fernet token")
    ran = run_cli("--debug", "token", URL)
    assert (ran.code, ran.stdout) == (1, "")
    warning = [line for line in ran.stderr.splitlines() if "mcp_client_auth.store" in line]
    assert len(warning) == 1 and "moved it to" in warning[0], ran.stderr
    assert ran.stderr.splitlines()[-1].startswith("error: the stored login for")


def test_an_expired_token_is_refreshed(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    before = run_cli.record(demo.mcp_url)
    assert before is not None and before.tokens is not None
    run_cli.put(expired(before))

    ran = run_cli("token", demo.mcp_url)
    assert (ran.code, ran.stderr) == (0, "")
    after = run_cli.record(demo.mcp_url)
    assert after is not None and after.tokens is not None
    assert ran.stdout == after.tokens.access_token + "\n"
    assert after.tokens.access_token != before.tokens.access_token
    assert demo.authorization_server.stats["refreshes"] == 1


def test_a_revoked_grant_asks_for_a_new_login(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    before = run_cli.record(demo.mcp_url)
    assert before is not None and before.tokens is not None and before.tokens.refresh_token
    assert run_cli("logout", demo.mcp_url).code == 0  # the server revokes the refresh token
    run_cli.put(expired(before))

    ran = run_cli("token", demo.mcp_url)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == (
        f"error: the login for {demo.mcp_url} has expired and could not be renewed; "
        f"run `mcp-client-auth login {demo.mcp_url}`"
    )
    assert before.tokens.refresh_token not in ran.output


def test_a_refused_refresh_asks_for_a_new_login(run_cli: InProcess, demo: DemoServers) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    record = run_cli.record(demo.mcp_url)
    assert record is not None and record.client is not None
    run_cli.put(expired(record))
    # The server no longer lets this client refresh (an administrator changed it, say).
    demo.authorization_server.clients[record.client.client_id].grant_types = ["authorization_code"]

    ran = run_cli("token", demo.mcp_url)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == (
        f"error: the authorization server refused to refresh the token for {demo.mcp_url} "
        f"(unauthorized_client); run `mcp-client-auth login {demo.mcp_url}`"
    )
    assert demo.authorization_server.stats["authorizations"] == 1  # no browser, no login


def expired(record: ServerRecord) -> ServerRecord:
    """``record`` with its access token expired (its refresh token as it was)."""
    assert record.tokens is not None
    return replace(record, tokens=replace(record.tokens, expires_at=time.time() - 10))
