"""The tool against the real authorization server (oidc-provider, ``tests/realas``).

Why besides the demo servers: oidc-provider is a certified, strict implementation that a user
meets in the wild. It rotates refresh tokens, issues access tokens shorter than the client's
refresh leeway here (so every ``token`` call must refresh), and answers RFC 7662 introspection,
which is how these tests know what ``logout`` really revoked at the server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from mcp_client_auth import ServerRecord
from tests.conftest import approve_device_code, follow_to_redirect_uri

from .conftest import CLI

if TYPE_CHECKING:
    from tests.conftest import RealStack

pytestmark = pytest.mark.integration

RS_CLIENT = ("mcp-rs", "mcp-rs-secret")  # the resource server's introspection client


def introspect(stack: RealStack, token: str) -> bool:
    endpoint = stack.as_metadata()["introspection_endpoint"]
    answer = httpx.post(endpoint, data={"token": token}, auth=RS_CLIENT, timeout=10)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["active"])


def test_login_token_refresh_status_logout(cli: CLI, start_realas) -> None:  # type: ignore[no-untyped-def]
    # 30-second access tokens: stale for the client after 15 s (it refreshes early by at most
    # half a token's lifetime), and long enough for curl to use one on a slow machine. Opaque
    # access tokens, checked by introspection: oidc-provider can revoke those (not its JWT
    # ones: see the next test).
    realas: RealStack = start_realas(AT_TTL="30", AT_FORMAT="opaque", RS_VALIDATION="introspect")
    url = realas.resource
    run = cli.login(url, browser=follow_to_redirect_uri)
    assert run.returncode == 0, run.output
    first = cli.record(url)
    assert first is not None and first.tokens is not None and first.tokens.refresh_token

    # once stale for the client, `token` refreshes silently
    time.sleep(16)
    run = cli("token", url)
    assert run.returncode == 0, run.output
    assert run.stderr == ""
    second = cli.record(url)
    assert second is not None and second.tokens is not None
    assert run.stdout == second.tokens.access_token + "\n"
    assert second.tokens.access_token != first.tokens.access_token
    assert second.tokens.refresh_token != first.tokens.refresh_token  # rotated
    assert not introspect(realas, first.tokens.refresh_token)  # the old one is spent

    curl = shutil.which("curl")
    assert curl is not None, "this test uses curl: apt-get install -y curl"
    header = cli("token", url, "--header").stdout.rstrip("\n")
    answered = subprocess.run(
        [curl, "-s", "-X", "POST", "-H", header, "-H", "content-type: application/json",
         "--data", '{"jsonrpc": "2.0", "id": 1, "method": "ping"}', url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert json.loads(answered.stdout).get("result", {}).get("echo") == "ping", answered.stdout

    status = cli("status", "--json")
    (server,) = json.loads(status.stdout)["servers"]
    assert server["issuer"] == realas.issuer and server["refresh_token"]["present"]
    plain = cli("status", url)
    assert plain.returncode == 0, plain.output
    assert f"issuer          {realas.issuer}" in plain.stdout
    assert "refresh token   present" in plain.stdout
    shown = cli.record(url)
    assert shown is not None and shown.client is not None
    assert shown.client.registration_access_token  # oidc-provider hands one out (RFC 7592)

    final = cli.record(url)
    assert final is not None and final.tokens is not None and final.tokens.refresh_token
    run = cli("logout", url)
    assert run.returncode == 0, run.output
    assert "revoked the refresh token and the access token" in run.stderr
    assert not introspect(realas, final.tokens.refresh_token)
    assert not introspect(realas, final.tokens.access_token)

    after = cli("token", url)
    assert after.returncode == 1 and after.stdout == ""
    secrets = secrets_of(first, second, shown, final)
    assert len(secrets) >= 5  # two access and two refresh tokens at least, the registration's
    for run in (status, plain):
        for secret in secrets:
            assert secret not in run.output, "a secret in the output of status"
    assert first.tokens.refresh_token not in cli.all_output()


def secrets_of(*records: ServerRecord) -> set[str]:
    """Every secret the records hold: tokens, the client secret, the registration's token."""
    found: set[str] = set()
    for record in records:
        if record.tokens is not None:
            found.add(record.tokens.access_token)
            found.add(record.tokens.refresh_token or "")
        if record.client is not None:
            found.add(record.client.client_secret or "")
            found.add(record.client.registration_access_token or "")
    found.discard("")
    return found


def test_logout_where_the_server_cannot_revoke(cli: CLI, start_realas) -> None:  # type: ignore[no-untyped-def]
    stack = start_realas(REVOCATION="0", AT_TTL="600")
    assert cli.login(stack.resource, browser=follow_to_redirect_uri).returncode == 0
    record = cli.record(stack.resource)
    assert record is not None and record.tokens is not None

    run = cli("logout", stack.resource)
    assert run.returncode == 0, run.output
    assert "no revocation endpoint, so nothing was revoked" in run.stderr
    # how long the forgotten tokens stay usable, honestly
    assert "still valid on the server until they expire (the access token in" in run.stderr
    assert record.tokens.refresh_token and introspect(stack, record.tokens.refresh_token)
    after = cli.record(stack.resource)
    assert after is not None and after.tokens is None


def test_logout_where_the_access_token_cannot_be_revoked(cli: CLI, start_realas) -> None:  # type: ignore[no-untyped-def]
    # oidc-provider revokes refresh tokens, but answers unsupported_token_type for its JWT
    # access tokens (RFC 7009 2.2.1): not a failure, just a token that lives until it expires.
    stack = start_realas(AT_TTL="600")
    assert cli.login(stack.resource, browser=follow_to_redirect_uri).returncode == 0
    record = cli.record(stack.resource)
    assert record is not None and record.tokens is not None and record.tokens.refresh_token

    run = cli("logout", stack.resource)
    assert run.returncode == 0, run.output
    assert "revoked the refresh token" in run.stderr
    assert "cannot revoke the access token (unsupported_token_type)" in run.stderr
    assert "still valid on the server until it expires (the access token in" in run.stderr
    assert not introspect(stack, record.tokens.refresh_token)


def test_login_with_the_device_flow(cli: CLI, realas: RealStack) -> None:
    def approve(verification_uri_complete: str) -> None:
        approve_device_code(verification_uri_complete)  # on "another device"; nothing to paste

    run = cli.login(realas.resource, browser=approve, method="--device")
    assert run.returncode == 0, run.output
    assert run.stdout == ""
    assert "Code:" in run.stderr
    record = cli.record(realas.resource)
    assert record is not None and record.tokens is not None
    assert cli("token", realas.resource).returncode == 0


def test_device_login_after_a_browser_login_on_the_same_store(cli: CLI, realas: RealStack) -> None:
    # The browser login registered a client for the code grant only; the authorization server
    # refuses that client the device grant, so the device login registers its own.
    assert cli.login(realas.resource, browser=follow_to_redirect_uri).returncode == 0
    first = cli.record(realas.resource)
    assert first is not None and first.client is not None
    assert "urn:ietf:params:oauth:grant-type:device_code" not in first.client.grant_types

    def approve(verification_uri_complete: str) -> None:
        approve_device_code(verification_uri_complete)

    run = cli.login(realas.resource, browser=approve, method="--device")
    assert run.returncode == 0, run.output
    second = cli.record(realas.resource)
    assert second is not None and second.client is not None and second.tokens is not None
    assert second.client.client_id != first.client.client_id
    assert "urn:ietf:params:oauth:grant-type:device_code" in second.client.grant_types
    assert cli("token", realas.resource).returncode == 0


FAKE_BROWSER = """
import sys, httpx
with httpx.Client(follow_redirects=True, timeout=30, trust_env=False) as browser:
    browser.get(sys.argv[1]).raise_for_status()
"""


def test_dpop_bound_tokens_are_not_handed_out(cli: CLI, realas: RealStack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = cli.login(realas.resource, "--dpop", browser=follow_to_redirect_uri)
    assert run.returncode == 0, run.output
    record = cli.record(realas.resource)
    assert record is not None and record.tokens is not None and record.tokens.dpop_bound
    assert "DPoP-bound" in cli("status").stdout
    assert json.loads(cli("status", "--json").stdout)["servers"][0]["access_token"]["type"] == (
        "DPoP"
    )

    refused = cli("token", realas.resource)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "DPoP-bound" in refused.stderr and len(refused.stderr.splitlines()) == 1

    script = tmp_path / "browser.py"
    script.write_text(FAKE_BROWSER)
    browser = {"BROWSER": f"{sys.executable} {script} %s"}
    run = cli("token", realas.resource, "--login", env=browser)
    assert run.returncode == 0, run.output
    record = cli.record(realas.resource)
    assert record is not None and record.tokens is not None and not record.tokens.dpop_bound
    assert run.stdout == record.tokens.access_token + "\n"
