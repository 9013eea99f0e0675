"""The provider against every authorization server MCP servers really run, each the
implementation's own code started here on 127.0.0.1 (``servers.py``), each in front of a real
MCP server: login; a new process reuses the stored tokens; refresh on expiry, after a restart
and on a 401; step-up on 403 ``insufficient_scope`` keeping the client_id; logout revoking.

One server per kind, shared by every check (pytest groups the checks by server); each check
registers its own client, with its own store. The provider's clock stands still unless a check
moves it: the server's clock alone decides when a token dies there (a 401), the provider's when
it thinks so itself (a refresh before the request). Where a check fails today, the case is a
strict ``xfail`` naming the server's defect (it flips to a failure if the server is fixed);
``KNOWN`` lists them and the README's table shows them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from mcp_client_auth import OAuthClientProvider, TokenStore
from mcp_client_auth.tokens import ServerRecord
from tests.conftest import follow_to_redirect_uri
from tests.servers.processes import ROOT

from .servers import SERVERS, Interop, start

pytestmark = pytest.mark.integration

NAMES = list(SERVERS)
MCP_HEADERS = {"accept": "application/json, text/event-stream"}

# The servers' own defects: these stay.
FASTMCP_EXPIRED_KILLS_GRANT = (
    "server defect: FastMCP's InMemoryOAuthProvider deletes the refresh token when its expired "
    "access token is presented, so the 401 can only end in a new login"
)
# (server, check) -> why it fails today.
KNOWN: dict[tuple[str, str], str] = {
    ("fastmcp", "refresh on 401"): FASTMCP_EXPIRED_KILLS_GRANT,
}


def cases(check: str) -> list[Any]:
    """Every server, in the same order for each check (so pytest starts each once), with the
    strict ``xfail`` of a known failure."""
    return [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[name, check])]
            if (name, check) in KNOWN
            else [],
        )
        for name in NAMES
    ]


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Interop]:
    started = start(request.param, tmp_path_factory.mktemp(request.param))
    yield started
    started.stop()


class Clock:
    """The provider's clock: still, unless a check moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingLogin:
    """The browser's part, auto-approved: follows the authorization server's redirects back to
    the redirect URI; counts the logins."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""  # the URL the browser was last sent back to

    def __call__(self, authorization_url: str) -> str:
        self.count += 1
        self.last = follow_to_redirect_uri(authorization_url)
        return self.last


class Session:
    """One client of one server: a provider, its store, clock and login, and an httpx client."""

    def __init__(self, server: Interop, store: TokenStore | None = None) -> None:
        self.server = server
        self.store = store or TokenStore.memory()
        self.clock = Clock()
        self.login = CountingLogin()
        self.provider = self.restart()

    def restart(self) -> OAuthClientProvider:
        """A new provider on the same store (a new process would make the same)."""
        self.provider = OAuthClientProvider(
            self.server.resource,
            store=self.store,
            login=self.login,
            clock=self.clock,
            dpop=False,
            client_name="mcp-client-auth interop",
        )
        return self.provider

    def call(self, tool: str = "echo") -> httpx.Response:
        with httpx.Client(auth=self.provider, timeout=30) as client:
            return client.post(self.server.resource, json=tool_call(tool), headers=MCP_HEADERS)

    def client_id(self) -> str:
        record = self.provider.record
        assert record is not None and record.client is not None
        return record.client.client_id

    def access_token(self) -> str:
        assert self.provider.tokens is not None
        return self.provider.tokens.access_token


def tool_call(tool: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": "hello"}},
    }


def answered(response: httpx.Response, text: str) -> None:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    result = response.json()["result"]
    assert not result.get("isError"), result
    assert result["content"][0]["text"] == text


def raw_call(server: Interop, access_token: str, tool: str = "echo") -> httpx.Response:
    """The resource, asked with this access token, no provider in between."""
    return httpx.post(
        server.resource,
        json=tool_call(tool),
        headers={**MCP_HEADERS, "authorization": f"Bearer {access_token}"},
        timeout=30,
    )


def logged_in(server: Interop, store: TokenStore | None = None) -> Session:
    session = Session(server, store)
    answered(session.call(), "hello")
    assert session.login.count == 1
    return session


def renewed(session: Session, before: str, client_id: str) -> None:
    """The last call got a new access token without a new login (a refresh), and kept the
    client; where the server issues no refresh token, a new login with the same client."""
    assert session.access_token() != before
    assert session.client_id() == client_id
    assert session.login.count == (1 if session.server.refresh_tokens else 2)


@pytest.mark.parametrize("server", cases("login"), indirect=True)
def test_login(server: Interop) -> None:
    session = logged_in(server)
    assert raw_call(server, session.access_token()).status_code == 200
    record = session.provider.record
    assert record is not None and record.issuer == server.issuer  # found, exact spelling
    assert record.server_metadata is not None
    if record.server_metadata.get("authorization_response_iss_parameter_supported"):  # RFC 9207
        assert parse_qs(urlsplit(session.login.last).query)["iss"] == [server.issuer]


CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    import httpx
    from mcp_client_auth import OAuthClientProvider, TokenStore

    folder, resource, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
    seen = {"logins": 0, "first": None, "logins_before_first": None}

    def login(url):
        seen["logins"] += 1
        raise RuntimeError("no login expected")

    def note(request):
        if seen["first"] is None:
            header = request.headers.get("authorization", "")
            seen["first"] = hashlib.sha256(header.encode()).hexdigest()
            seen["logins_before_first"] = seen["logins"]

    provider = OAuthClientProvider(
        resource, store=TokenStore.default(folder), login=login, clock=lambda: now, dpop=False
    )
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "again"}}}
    with httpx.Client(auth=provider, timeout=30, event_hooks={"request": [note]}) as client:
        try:
            seen["status"] = client.post(
                resource, json=body, headers={"accept": "application/json, text/event-stream"}
            ).status_code
        except Exception as exc:
            seen["status"] = type(exc).__name__
    print(json.dumps(seen))
    """
)


@pytest.mark.parametrize("server", cases("new process"), indirect=True)
def test_a_new_process_reuses_the_stored_tokens(
    server: Interop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    session = logged_in(server, TokenStore.default(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), server.resource, str(session.clock.now)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    stored = f"Bearer {session.access_token()}"
    assert seen["first"] == hashlib.sha256(stored.encode()).hexdigest()  # the stored token
    assert seen["logins_before_first"] == 0


@pytest.mark.parametrize("server", cases("refresh on expiry"), indirect=True)
def test_refresh_on_expiry(server: Interop) -> None:
    session = logged_in(server)
    before, client_id = session.access_token(), session.client_id()
    session.clock.advance(server.access_ttl + 1)
    answered(session.call(), "hello")
    renewed(session, before, client_id)


@pytest.mark.parametrize("server", cases("refresh after restart"), indirect=True)
def test_refresh_after_a_restart(server: Interop) -> None:
    session = logged_in(server)
    before, client_id = session.access_token(), session.client_id()
    session.restart()
    session.clock.advance(server.access_ttl + 1)
    answered(session.call(), "hello")
    renewed(session, before, client_id)


def refused(server: Interop, access_token: str, *, limit: float = 60.0) -> bool:
    """Wait (up to ``limit`` seconds) until the resource refuses this access token."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if raw_call(server, access_token).status_code == 401:
            return True
        time.sleep(0.25)
    return False


@pytest.mark.parametrize("server", cases("refresh on 401"), indirect=True)
def test_refresh_on_a_401(server: Interop) -> None:
    if server.access_ttl > 60:
        pytest.skip(f"{server.name}: its access tokens live {server.access_ttl} s, fixed")
    session = logged_in(server)
    before, client_id = session.access_token(), session.client_id()
    assert refused(server, before)  # dead at the server; alive by the provider's clock
    answered(session.call(), "hello")
    renewed(session, before, client_id)


@pytest.mark.parametrize("server", cases("step-up"), indirect=True)
def test_step_up_keeps_the_client_id(server: Interop) -> None:
    session = logged_in(server)
    client_id = session.client_id()
    assert raw_call(server, session.access_token(), "save_note").status_code == 403
    answered(session.call("save_note"), "saved: hello")
    assert session.login.count == 2
    assert session.client_id() == client_id


def refresh_grant(record: ServerRecord, refresh_token: str) -> httpx.Response:
    """A refresh-token grant at the server's token endpoint, as the client it was issued to."""
    assert record.client is not None and record.server_metadata
    client = record.client
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client.client_id,
        "resource": record.resource_indicator,
    }
    auth = None
    if client.client_secret and client.token_endpoint_auth_method == "client_secret_basic":
        auth = (client.client_id, client.client_secret)
    elif client.client_secret:
        form["client_secret"] = client.client_secret
    endpoint = str(record.server_metadata["token_endpoint"])
    return httpx.post(endpoint, data=form, auth=auth, timeout=30)


@pytest.mark.parametrize("server", cases("logout"), indirect=True)
def test_logout_revokes(server: Interop) -> None:
    session = logged_in(server)
    record, tokens = session.provider.record, session.provider.tokens
    assert record is not None and tokens is not None
    result = session.provider.logout()
    assert result.forgotten
    if not server.revocation:
        assert not result.revocation_supported
        assert raw_call(server, tokens.access_token).status_code == 200  # alive until it expires
        return
    assert result.revocation_supported
    assert not result.errors, result.errors
    assert raw_call(server, tokens.access_token).status_code == 401
    if tokens.refresh_token:  # dead at the server: it can renew nothing
        refused = refresh_grant(record, tokens.refresh_token)
        # invalid_grant: the token is gone (RFC 6749 5.2 says 400; FastMCP's server says 401)
        assert refused.status_code in (400, 401), refused.text
        assert refused.json().get("error") == "invalid_grant", refused.text


# The servers whose revocation endpoint demands client_secret from a public client (mcp 2.3.0,
# server/auth/handlers/revoke.py, which FastMCP's provider uses).
REVOCATION_DEMANDS_SECRET = {"mcp-sdk", "fastmcp"}


def revoke(record: ServerRecord, token: str, **extra: str) -> httpx.Response:
    """An RFC 7009 revocation of ``token`` by the public client it was issued to."""
    assert record.client is not None and record.server_metadata
    form = {"token": token, "client_id": record.client.client_id, **extra}
    endpoint = str(record.server_metadata["revocation_endpoint"])
    return httpx.post(endpoint, data=form, timeout=30)


@pytest.mark.parametrize("server", cases("revocation on the wire"), indirect=True)
def test_what_each_revocation_endpoint_takes_from_a_public_client(server: Interop) -> None:
    """No library code: what a fix for the mcp SDK's defect may rely on. Every server here
    takes an empty ``client_secret`` from a public client; the mcp SDK's (and FastMCP's)
    refuse the request without one."""
    first, second = logged_in(server), logged_in(server)
    record = first.provider.record
    assert record is not None and record.server_metadata is not None
    if not server.revocation:
        assert "revocation_endpoint" not in record.server_metadata
        return
    assert record.client is not None and record.client.client_secret is None  # public
    bare = revoke(record, first.access_token())
    second_record = second.provider.record
    assert second_record is not None
    empty = revoke(second_record, second.access_token(), client_secret="")
    assert empty.status_code == 200, empty.text
    assert raw_call(server, second.access_token()).status_code == 401
    if server.name in REVOCATION_DEMANDS_SECRET:
        assert bare.status_code == 400
        assert "client_secret" in bare.json()["error_description"]
        assert raw_call(server, first.access_token()).status_code == 200
    else:
        assert bare.status_code == 200, bare.text
        assert raw_call(server, first.access_token()).status_code == 401
