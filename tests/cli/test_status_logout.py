"""``status`` and ``logout`` against the demo servers.

What is proved: ``status`` (table and JSON) shows what a person needs (resource, issuer,
client, scopes, expiry, refresh token present, store and key protection) and never a token or
a secret; ``logout`` revokes at the authorization server (which then refuses the tokens),
forgets locally, says which of the two happened, and ``--all`` and ``--forget-client`` do what
they say.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import jwt
import pytest
from demo_servers import DemoServers

from mcp_client_auth import ServerRecord

from .conftest import CLI

pytestmark = pytest.mark.integration


def secrets_of(record: ServerRecord | None) -> list[str]:
    assert record is not None and record.tokens is not None
    found = [record.tokens.access_token, record.tokens.refresh_token or ""]
    if record.client and record.client.client_secret:
        found.append(record.client.client_secret)
    return [s for s in found if s]


def test_status_shows_the_login_and_no_secret(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    record = cli.record(demo.mcp_url)
    assert record is not None and record.client is not None and record.tokens is not None

    table = cli("status")
    assert table.returncode == 0, table.output
    for expected in (
        demo.mcp_url,
        demo.issuer,
        record.client.client_id,
        "mcp:tools",
        "expires in",
        "refresh token   present",
        f"encrypted files in {cli.home}",
        "key file",
        "protected only by file permissions",
    ):
        assert expected in table.stdout, (expected, table.stdout)

    document = json.loads(cli("status", "--json").stdout)
    assert document["store"]["location"] == str(cli.home)
    assert document["store"]["protection"]["kind"] == "key file"
    assert not document["store"]["protection"]["in_keyring"]
    (server,) = document["servers"]
    assert server["resource"] == demo.mcp_url
    assert server["issuer"] == demo.issuer
    assert server["client_id"] == record.client.client_id
    assert "mcp:tools" in server["scopes"]
    assert server["access_token"]["valid"] and 3000 < server["access_token"]["expires_in"] <= 3600
    assert server["refresh_token"] == {"present": True}

    assert cli("status", demo.mcp_url).returncode == 0
    missing = cli("status", demo.mcp_url + "/other")
    assert missing.returncode == 1  # "am I logged in there?" for scripts
    assert "Not logged in" in missing.stdout

    for secret in secrets_of(record):
        assert secret not in cli.all_output()
        assert secret[:12] not in cli.all_output()  # not even a prefix, masked or not


def test_status_with_no_store_creates_nothing(cli: CLI) -> None:
    run = cli("status")
    assert run.returncode == 0
    assert "nothing stored" in run.stdout
    assert json.loads(cli("status", "--json").stdout)["servers"] == []
    assert not cli.home.exists()


def test_logout_revokes_then_forgets(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None and record.client is not None
    tokens, client_id = record.tokens, record.client.client_id
    authorization_server = demo.authorization_server

    run = cli("logout", demo.mcp_url)
    assert run.returncode == 0, run.output
    assert run.stdout == ""
    assert "revoked the refresh token and the access token" in run.stderr
    assert authorization_server.stats["revocations"] == 2
    # the authorization server now refuses the refresh token, and lists the access token
    refused = httpx.post(
        f"{demo.issuer}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "client_id": client_id,
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    jti = jwt.decode(tokens.access_token, options={"verify_signature": False})["jti"]
    assert jti in authorization_server.revoked_access_tokens

    after = cli.record(demo.mcp_url)
    assert after is not None and after.tokens is None  # forgotten...
    assert after.client is not None  # ...but the registration is kept for the next login
    assert cli("token", demo.mcp_url).returncode == 1
    status = cli("status", demo.mcp_url)
    assert status.returncode == 1 and "logged out" in status.stdout

    again = cli("logout", demo.mcp_url)
    assert again.returncode == 0 and "Already logged out" in again.stderr

    dropped = cli("logout", demo.mcp_url, "--forget-client")
    assert dropped.returncode == 0 and "dropped the client registration" in dropped.stderr
    assert cli.record(demo.mcp_url) is None
    assert authorization_server.stats["revocations"] == 2  # nothing more to revoke
    for secret in secrets_of(record):
        assert secret not in cli.all_output()


def test_logout_all(cli: CLI, start_demo: Callable[..., DemoServers]) -> None:
    first, second = start_demo(), start_demo()
    for demo in (first, second):
        assert cli.login(demo.mcp_url).returncode == 0

    run = cli("logout", "--all", "--forget-client")
    assert run.returncode == 0, run.output
    for demo in (first, second):
        assert f"Logged out of {demo.mcp_url}" in run.stderr
        assert demo.authorization_server.stats["revocations"] == 2
        assert cli.record(demo.mcp_url) is None
    assert json.loads(cli("status", "--json").stdout)["servers"] == []
    nothing = cli("logout", "--all")
    assert nothing.returncode == 0 and "Nothing stored" in nothing.stderr


def test_logout_when_revocation_fails_still_forgets(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    demo.stop()  # the authorization server is gone: revocation cannot even be tried

    run = cli("logout", demo.mcp_url)
    assert run.returncode == 1, run.output  # the tokens still live on the server: say so
    assert "revoking failed" in run.stderr
    assert "Still valid on the server" in run.stderr
    assert len(run.stderr.splitlines()) == 1
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is None  # forgotten here all the same
