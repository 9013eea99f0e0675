"""``login`` and ``token`` against the demo servers, through the installed console script.

What is proved: login stores tokens and says where and how they are protected; ``token``
prints exactly the token and a newline (nothing else on stdout or stderr), the token works
against the MCP server (with curl), an expired token is refreshed silently under the lock, and
a missing or refused login is one line on stderr with the command that fixes it, and exit 1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest
from demo_servers import DemoServers

from .conftest import CLI

pytestmark = pytest.mark.integration

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}


def test_login_stores_tokens_and_says_where(cli: CLI, demo: DemoServers) -> None:
    run = cli.login(demo.mcp_url)
    assert run.returncode == 0, run.output
    assert run.stdout == ""  # everything for a person goes to stderr
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None
    assert record.issuer == demo.issuer
    assert record.tokens.refresh_token
    stats = demo.authorization_server.stats
    assert stats["registrations"] == 1 and stats["tokens_from_code"] == 1
    assert f"Logged in to {demo.mcp_url}" in run.stderr
    assert f"encrypted files in {cli.home}" in run.stderr
    # no keyring here: the honest description of the fallback, and where the key file is
    assert "protected only by file permissions" in run.stderr
    assert str(cli.config / "mcp-client-auth" / "keys") in run.stderr
    assert record.tokens.access_token not in run.output
    assert record.tokens.refresh_token not in run.output


def test_token_prints_exactly_the_token(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None
    issued = demo.authorization_server.stats["access_tokens"]

    run = cli("token", demo.mcp_url)
    assert run.returncode == 0, run.output
    assert run.stdout == record.tokens.access_token + "\n"
    assert run.stderr == ""

    run = cli("token", demo.mcp_url, "--header")
    assert run.returncode == 0, run.output
    assert run.stdout == f"Authorization: Bearer {record.tokens.access_token}\n"
    assert run.stderr == ""
    # a valid stored token: no request to the authorization server
    assert demo.authorization_server.stats["access_tokens"] == issued


def test_token_spellings_of_the_url_share_one_login(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    loud = demo.mcp_url.replace("http://", "HTTP://") + "#fragment"
    run = cli("token", loud)
    assert run.returncode == 0, run.output
    assert run.stdout.count("\n") == 1


def test_token_works_with_curl(cli: CLI, demo: DemoServers) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("this test uses curl, as the README does: apt-get install -y curl")
    assert cli.login(demo.mcp_url).returncode == 0
    header = cli("token", demo.mcp_url, "--header").stdout.rstrip("\n")

    def call(*extra: str) -> str:
        return subprocess.run(
            [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", *extra,
             "-H", "content-type: application/json",
             "-H", "accept: application/json, text/event-stream",
             "--data", json.dumps(INITIALIZE), demo.mcp_url],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip

    assert call() == "401"
    assert call("-H", header) == "200"


def test_token_not_logged_in(cli: CLI, demo: DemoServers) -> None:
    run = cli("token", demo.mcp_url)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "not logged in" in lines[0]
    assert f"mcp-client-auth login {demo.mcp_url}" in lines[0]
    assert not cli.home.exists(), "a reading command must not create a store (or a key)"

    # a store that exists, but holds nothing for this server
    assert cli.login(demo.mcp_url).returncode == 0
    other = demo.mcp_url + "/other"
    run = cli("token", other)
    assert (run.returncode, run.stdout) == (1, "")
    assert len(run.stderr.splitlines()) == 1 and f"login {other}" in run.stderr
    assert demo.authorization_server.stats["authorizations"] == 1  # never a login


def test_token_refreshes_an_expired_token(cli: CLI, start_demo) -> None:  # type: ignore[no-untyped-def]
    # A token that lives 5 s is stale for the client after 2.5 s (it refreshes early, by at
    # most half a token's lifetime).
    demo: DemoServers = start_demo(access_token_ttl=5)
    assert cli.login(demo.mcp_url).returncode == 0
    time.sleep(3)
    before = cli.record(demo.mcp_url)
    assert before is not None and before.tokens is not None
    demo.authorization_server.access_token_ttl = 3600
    stats = demo.authorization_server.stats

    run = cli("token", demo.mcp_url)
    assert run.returncode == 0, run.output
    assert run.stderr == ""
    after = cli.record(demo.mcp_url)
    assert after is not None and after.tokens is not None
    assert stats["refreshes"] == 1
    assert run.stdout == after.tokens.access_token + "\n"
    assert after.tokens.access_token != before.tokens.access_token
    assert after.tokens.refresh_token != before.tokens.refresh_token  # rotated, and kept

    again = cli("token", demo.mcp_url)
    assert again.stdout == run.stdout and stats["refreshes"] == 1  # now valid: no refresh


def test_token_refresh_refused(cli: CLI, start_demo) -> None:  # type: ignore[no-untyped-def]
    demo: DemoServers = start_demo(access_token_ttl=5)
    assert cli.login(demo.mcp_url).returncode == 0
    time.sleep(3)  # stale for the client: the next `token` must refresh
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None and record.client is not None
    # The grant is revoked behind the tool's back (RFC 7009, as another client could).
    revoked = httpx.post(
        f"{demo.issuer}/revoke",
        data={"token": record.tokens.refresh_token, "client_id": record.client.client_id},
    )
    assert revoked.status_code == 200

    run = cli("token", demo.mcp_url)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert f"mcp-client-auth login {demo.mcp_url}" in lines[0]
    assert demo.authorization_server.stats["authorizations"] == 1  # no browser, no login


def test_token_refresh_refused_as_unauthorized_client(cli: CLI, start_demo) -> None:  # type: ignore[no-untyped-def]
    demo: DemoServers = start_demo(access_token_ttl=5)
    assert cli.login(demo.mcp_url).returncode == 0
    time.sleep(3)  # stale for the client: the next `token` must refresh
    record = cli.record(demo.mcp_url)
    assert record is not None and record.client is not None
    # The server no longer lets this client refresh (an administrator changed it, say).
    demo.authorization_server.clients[record.client.client_id].grant_types = ["authorization_code"]

    run = cli("token", demo.mcp_url)
    assert (run.returncode, run.stdout) == (1, "")
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "refused to refresh" in lines[0] and "(unauthorized_client)" in lines[0]
    assert f"mcp-client-auth login {demo.mcp_url}" in lines[0]
    assert demo.authorization_server.stats["authorizations"] == 1  # no browser, no login


def test_login_with_a_pre_registered_confidential_client(cli: CLI, demo: DemoServers) -> None:
    registered = httpx.post(
        f"{demo.issuer}/register",
        json={
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "pre-registered by hand",
        },
    ).json()
    client_id, secret = registered["client_id"], registered["client_secret"]

    run = cli.login(demo.mcp_url, "--client-id", client_id, "--client-secret-stdin", secret=secret)
    assert run.returncode == 0, run.output
    assert client_id in run.stderr and "pre-registered" in run.stderr
    assert demo.authorization_server.stats["registrations"] == 1  # only ours, above
    record = cli.record(demo.mcp_url)
    assert record is not None and record.client is not None
    assert record.client.client_secret == secret

    for args in (("status",), ("status", "--json"), ("status", demo.mcp_url)):
        shown = cli(*args)
        assert shown.returncode == 0, shown.output
        assert client_id in shown.stdout
    assert secret not in cli.all_output()


def test_login_with_an_issuer_the_server_does_not_name_is_refused(
    cli: CLI, demo: DemoServers
) -> None:
    elsewhere = "https://login.example.com"
    run = cli.login(demo.mcp_url, "--issuer", elsewhere)
    assert run.returncode == 1, run.output
    assert run.stdout == ""
    assert elsewhere in run.stderr and demo.issuer in run.stderr and "issuer=" in run.stderr
    assert demo.authorization_server.stats["registrations"] == 0  # never contacted
    record = cli.record(demo.mcp_url)
    assert record is None or record.tokens is None

    run = cli.login(demo.mcp_url, "--issuer", demo.issuer)  # the right one: as without it
    assert run.returncode == 0, run.output
    assert demo.authorization_server.stats["registrations"] == 1


def test_python_m_is_the_same_tool(cli: CLI) -> None:
    import sys

    via_module = subprocess.run(
        [sys.executable, "-m", "mcp_client_auth", "--help"],
        capture_output=True, text=True, env=cli.env, timeout=60,
    )  # fmt: skip
    assert via_module.returncode == 0
    assert via_module.stdout == cli("--help").stdout
    assert "usage: mcp-client-auth" in via_module.stdout
