"""Leaks: no access token, refresh token, client secret, authorization code or PKCE verifier
anywhere it should not be: logs at DEBUG, ``repr``/``str`` of every public object, every error,
files on disk, the command line's output, and requests to any other origin.

:class:`Hostile` records every secret it issues or receives, so each check looks for all of
them. (Every failure case in the other files also runs ``assert_clean``, which checks the
error's text, chain and traceback for the secrets of its run.)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import (
    ClientCredentials,
    IdentityAssertion,
    OAuthClientProvider,
    TokenError,
    TokenStore,
)
from mcp_client_auth.flow import FlowSettings
from mcp_client_auth.registration import ClientSettings
from tests.cli.conftest import CLI
from tests.servers.in_thread import serve_in_thread
from tests.servers.processes import listening_socket

from .drive import (
    COMBOS,
    assert_clean,
    everything_said,
    leaked,
    outcome,
    own_transport,
    provider,
    send,
    stored,
)
from .hostile import EVIL, Hostile, Reply

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]


def later() -> float:
    return time.time() + 7200


def public_objects(auth: OAuthClientProvider, store: TokenStore) -> list[object]:
    record = auth.record
    objects: list[object] = [auth, store, auth.tokens, record]
    if record is not None:
        objects += [record.client, record.tokens]
    return objects


def shown(objects: list[object]) -> str:
    return "\n".join(f"{o!r}\n{o!s}" for o in objects)


@pytest.mark.parametrize("combo", COMBOS)
def test_whole_flow_at_debug_leaks_nothing(
    combo: str, caplog: pytest.LogCaptureFixture, httpx_mock: HTTPXMock
) -> None:
    """Registration with a client secret, login, refresh, step-up, logout; everything logged."""
    caplog.set_level(logging.DEBUG)
    servers = Hostile(confidential=True)
    httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)  # logout's
    store = TokenStore.memory()
    auth = provider(servers, store, combo=combo)
    objects: list[object] = []
    assert send(servers, auth, combo=combo).status_code == 200
    objects += public_objects(auth, store)
    expired = provider(servers, store, clock=later, combo=combo)
    assert send(servers, expired, combo=combo).status_code == 200  # refresh
    objects += public_objects(expired, store)
    servers.required_scope = "admin"
    servers.scopes_supported = ["read", "write", "admin"]
    assert send(servers, expired, combo=combo).status_code == 200  # step-up: a second login
    objects += public_objects(expired, store)
    result = expired.logout()
    objects += [result, *public_objects(expired, store)]
    assert result.revoked == ("refresh_token", "access_token")

    kinds = {s.split("-")[0] for s in servers.secrets}
    assert kinds >= {"at", "rt", "code", "cs"}  # every kind of secret was in play
    assert any(len(s) >= 43 and "-" not in s[:3] for s in servers.secrets)  # a PKCE verifier
    logged = caplog.text + "\n".join(
        str(r.args) + str(r.__dict__.get("exc_text")) for r in caplog.records
    )
    assert "mcp_client_auth" in {r.name.split(".")[0] for r in caplog.records}
    assert leaked(logged, servers.secrets) == []
    assert leaked(shown(objects), servers.secrets) == []


def test_pre_registered_client_secret_is_not_shown() -> None:
    servers = Hostile()
    secret = "cs-pre-registered-7Hq2"
    servers.clients["pre"] = {"client_id": "pre", "client_secret": secret, "redirect_uris": []}
    auth = provider(servers, client_id="pre", client_secret=secret)
    assert secret not in repr(auth) + str(auth)
    assert secret not in repr(auth._flow.settings)
    assert secret not in repr(ClientSettings("x", client_id="pre", client_secret=secret))
    assert send(servers, auth).status_code == 200
    assert leaked(shown(public_objects(auth, auth.store)), {secret, *servers.secrets}) == []


def test_client_credentials_flow_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    servers = Hostile()
    secret = "cs-service-9Kd1"
    servers.clients["svc"] = {"client_id": "svc", "client_secret": secret}
    servers.secrets.add(secret)
    auth = ClientCredentials(
        servers.resource,
        client_id="svc",
        client_secret=secret,
        store=TokenStore.memory(),
        transport=own_transport(servers),
    )
    assert send(servers, auth).status_code == 200
    assert leaked(caplog.text + shown(public_objects(auth, auth.store)), servers.secrets) == []


def _private_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_client_credentials_private_key_is_not_in_its_repr() -> None:
    pem = _private_key()
    auth = ClientCredentials(
        "https://mcp.example.com/mcp",
        client_id="svc",
        private_key=pem,
        signing_algorithm="ES256",
        store=TokenStore.memory(),
    )
    body = pem.decode().splitlines()[1]
    assert body not in repr(auth) + str(auth)


def test_flow_settings_repr_hides_the_private_key() -> None:
    pem = _private_key()
    auth = ClientCredentials(
        "https://mcp.example.com/mcp",
        client_id="svc",
        private_key=pem,
        signing_algorithm="ES256",
        store=TokenStore.memory(),
    )
    settings = auth._flow.settings
    assert isinstance(settings, FlowSettings)
    assert pem.decode().splitlines()[1] not in repr(settings)


def test_identity_assertion_is_not_shown() -> None:
    assertion = "eyJhbGciOi.assertion-secret.sig"
    auth = IdentityAssertion(
        "https://mcp.example.com/mcp", assertion=assertion, store=TokenStore.memory()
    )
    assert assertion not in repr(auth) + str(auth) + repr(auth._flow.settings)


# -- errors that carry what a server said ------


def test_refresh_error_echoing_the_refresh_token_is_redacted() -> None:
    servers = Hostile()
    store = TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200

    def echo(seen: Any) -> Reply:
        token = seen.form["refresh_token"]
        return Reply.json(
            {
                "error": "invalid_request",
                "error_description": f"refresh_token {token} is malformed",
            },
            400,
        )

    servers.on_grant("refresh_token", echo)
    error = outcome(servers, provider(servers, store, clock=later))
    assert_clean(error, TokenError, r"invalid_request", servers.secrets)


def test_exchange_error_echoing_the_code_is_redacted() -> None:
    servers = Hostile()

    def echo(seen: Any) -> Reply:
        return Reply.json(
            {"error": "invalid_request", "error_description": f"bad request: {seen.body.decode()}"},
            400,
        )

    servers.on_grant("authorization_code", echo)
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"invalid_request", servers.secrets)


# -- nothing goes to another origin ------


@pytest.mark.parametrize("combo", COMBOS)
def test_redirect_from_the_resource_does_not_carry_the_token(combo: str) -> None:
    servers = Hostile()
    auth = provider(servers, combo=combo)
    assert send(servers, auth, combo=combo).status_code == 200
    servers.hooks["resource"] = lambda seen: Reply(307, b"", [("location", f"{EVIL}/mcp")])
    servers.hooks["other"] = lambda seen: Reply.json({"ok": True})
    send(servers, auth, combo=combo, follow_redirects=True)
    to_evil = servers.requests_to(EVIL)
    assert to_evil and all("authorization" not in s.headers for s in to_evil)


@pytest.mark.parametrize(
    "url",
    [
        "https://mcp.example.com/mcpx",
        "https://mcp.example.com/other",
        "https://mcp.example.com.evil.example/mcp",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
        "https://MCP.example.com/mcp/../admin",
        f"{EVIL}/mcp",
    ],
)
def test_token_is_attached_to_the_resource_only(url: str) -> None:
    servers = Hostile()
    auth = provider(servers)
    assert send(servers, auth).status_code == 200
    servers.hooks["other"] = lambda seen: Reply.json({}, 401, [("www-authenticate", "Bearer")])
    servers.hooks["unknown"] = servers.hooks["other"]
    before = len(servers.seen)
    send(servers, auth, url=url)
    sent = servers.seen[before:]
    assert sent and all(
        not s.headers.get("authorization") or servers.route(s) == "resource" for s in sent
    ), [(s.url, s.headers.get("authorization")) for s in sent]
    assert servers.logins == 1


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token"])
def test_redirected_token_request_sends_no_secret_elsewhere(grant: str) -> None:
    servers = Hostile()
    store = TokenStore.memory()
    if grant == "refresh_token":
        assert send(servers, provider(servers, store)).status_code == 200
    servers.on_grant(grant, lambda seen: Reply(307, b"", [("location", f"{EVIL}/token")]))
    auth = provider(servers, store, clock=later if grant == "refresh_token" else time.time)
    outcome(servers, auth, follow_redirects=True)
    assert (
        leaked(json.dumps([s.body.decode() for s in servers.requests_to(EVIL)]), servers.secrets)
        == []
    )


def test_redirected_token_request_is_refused_without_following() -> None:
    """The default client (no redirects followed): a 307 from the token endpoint is an error,
    and nothing reaches the other origin."""
    servers = Hostile()
    servers.on_grant(
        "authorization_code", lambda seen: Reply(307, b"", [("location", f"{EVIL}/token")])
    )
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"HTTP 307", servers.secrets)
    assert servers.requests_to(EVIL) == []


# -- on disk ------


def test_store_files_hold_no_secret_in_clear(tmp_path: Path) -> None:
    servers = Hostile(confidential=True)
    store = TokenStore.default()
    auth = provider(servers, store)
    assert send(servers, auth).status_code == 200
    assert send(servers, provider(servers, store, clock=later)).status_code == 200
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in servers.secrets:
            assert secret.encode() not in data, path
        assert b"mcp.example.com" not in data, path  # not even which servers are used
    assert stored(store, servers).tokens is not None


# -- the command line ------


@pytest.fixture
def live() -> Iterator[Hostile]:
    """The servers for real, on 127.0.0.1 (plain http is allowed for loopback)."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    servers = Hostile(
        resource=f"http://127.0.0.1:{port}/mcp",
        issuer=f"http://127.0.0.1:{port}",
        confidential=True,
        reported_ttl=0,
    )  # seen as expired: `token`
    served = serve_in_thread(servers.asgi, sock)  # refreshes every time
    try:
        yield servers
    finally:
        served.stop()


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_client_auth", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=REPO,
    )


def test_command_line_output_leaks_nothing(live: Hostile) -> None:
    store = TokenStore.default()
    auth = OAuthClientProvider(live.resource, store=store, login=live.approve)
    with httpx.Client(auth=auth, trust_env=False) as client:
        assert client.get(live.resource).status_code == 200

    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    for name, args in {
        "status": ("status",),
        "status-json": ("status", "--json"),
        "status-debug": ("--debug", "status", live.resource),
        "token": ("token", live.resource),
        "token-debug": ("--debug", "token", "--header", live.resource),
        "doctor": ("doctor",),
        "logout": ("--debug", "logout", live.resource),
    }.items():
        runs[name] = cli(*args)
    assert "refresh_token" in {s.form.get("token_type_hint") for s in live.seen}  # revoked
    auth = OAuthClientProvider(live.resource, store=store, login=live.approve)
    auth.login()  # again, for a refused refresh
    live.on_grant(
        "refresh_token",
        lambda seen: Reply.json({"error": "invalid_grant", "error_description": "expired"}, 400),
    )
    runs["token-refused"] = cli("--debug", "token", live.resource)
    runs["token-no-login"] = cli("token", live.resource)

    for name, run in runs.items():
        assert run.returncode in (0, 1), (name, run.stderr)
        assert leaked(run.stderr, live.secrets) == [], (name, run.stderr)
        if name not in ("token", "token-debug"):
            assert leaked(run.stdout, live.secrets) == [], (name, run.stdout)
    for name in ("token", "token-debug"):  # stdout is exactly one current access token
        out = runs[name].stdout.strip().removeprefix("Authorization: Bearer ")
        assert runs[name].returncode == 0 and out in live.secrets and out.startswith("at-")
        assert leaked(runs[name].stdout.replace(out, ""), live.secrets) == []
    for name in ("token-refused", "token-no-login"):
        assert runs[name].returncode == 1 and runs[name].stdout == "", runs[name]
        assert "mcp-client-auth login" in runs[name].stderr
    assert len(live.token_requests("refresh_token")) >= 3


def test_login_output_leaks_nothing(live: Hostile, tmp_path: Path) -> None:
    """``--debug login``: the command that handles the authorization code, the PKCE verifier
    and the client secret, run as a user runs it (``--paste``, a scripted browser)."""
    env = {**os.environ, "NO_COLOR": "1"}
    tool = CLI(Path(env["MCP_CLIENT_AUTH_HOME"]), tmp_path / "config", env, [])
    run = tool.login(live.resource, "--debug", browser=live.approve)
    assert run.returncode == 0, run.output
    assert "Logged in to" in run.stderr
    assert "HTTP Request: POST" in run.stderr  # --debug logged every request

    [exchange] = live.token_requests("authorization_code")
    code, verifier = exchange.form["code"], exchange.form["code_verifier"]
    registered = stored(TokenStore.default(), live)
    assert registered.client is not None and registered.tokens is not None
    secret = registered.client.client_secret
    assert secret is not None and registered.tokens.refresh_token is not None
    for value in (code, verifier, secret, registered.tokens.access_token):
        assert value in live.secrets  # each one is looked for below
    assert leaked(run.output, live.secrets) == [], run.output


def test_every_error_of_the_catalogue_is_clean() -> None:
    """A sweep: errors from a run where every kind of secret exists already."""
    servers = Hostile(confidential=True)
    store = TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200
    errors: list[BaseException] = []
    for body in (b"", b"[]", b"{}", b'{"access_token": 1}', b"<html>", b'{"error": "x"}'):
        servers.on_grant("refresh_token", lambda seen, b=body: Reply.raw(b, 200))
        errors.append(outcome(servers, provider(servers, store, clock=later)))
        store_record = stored(store, servers)
        assert store_record.tokens is not None
    for status in (400, 401, 500, 503):
        servers.on_grant("refresh_token", lambda seen, s=status: Reply.json({"error": "e"}, s))
        errors.append(outcome(servers, provider(servers, store, clock=later)))
    assert all(isinstance(e, TokenError) for e in errors), errors
    assert leaked("\n".join(everything_said(e) for e in errors), servers.secrets) == []


# -- the values that hold a secret: only their repr reaches text, and it leaves the secret out ---
# (a named tuple would also give it away to json.dumps, iteration and unpacking: FINDINGS S6)


def _as_any_text(value: object) -> str:
    """Every way a value becomes text without anyone asking for the secret in it: repr, str,
    a format, a JSON log line that stringifies what it cannot encode (as structured loggers
    do), and a pretty-printer."""
    import pprint

    return "\n".join(
        [
            repr(value),
            str(value),
            f"{value}",
            json.dumps({"value": value}, default=str),
            json.dumps({"settings": [value]}, default=repr),
            pprint.pformat(value),
        ]
    )


def test_client_settings_keep_the_secret_out_of_any_text() -> None:
    secret = "cs-pre-registered-7Hq2-secret"
    client = ClientSettings("x", client_id="pre", client_secret=secret)
    settings = FlowSettings(server_url="https://mcp.example.com/mcp", client=client)
    for value in (client, settings):
        assert secret not in _as_any_text(value)
    with pytest.raises(TypeError):
        iter(client)  # type: ignore[call-overload]
    assert client.replace(application_type="web").client_secret == secret


def test_a_store_key_keeps_its_keys_out_of_any_text() -> None:
    from mcp_client_auth.store.keys import Protection, StoreKey

    raw = b"K3yMaterial-0123456789abcdefABCD"
    key = StoreKey((raw,), Protection("memory", "this process"))
    text = _as_any_text(key)
    assert raw.decode() not in text and raw.hex() not in text
    with pytest.raises(TypeError):
        iter(key)  # type: ignore[call-overload]


def test_a_failed_key_load_shows_no_key_in_its_traceback_locals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store opened before its key was kept holds a pending key; a later load that fails
    (here: ``require_keyring=True`` and no keyring) must not show it in a traceback that
    prints the frames' locals (as rich and pytest do)."""
    import traceback

    from mcp_client_auth.errors import StorageError
    from mcp_client_auth.store import keys

    monkeypatch.delenv("MCP_CLIENT_AUTH_KEY")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")  # and no D-Bus: no keyring at all
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    keys.forget_keys()
    store = tmp_path / "pending-store"
    pending = keys.load_key(store, create=False)
    assert pending.pending
    with pytest.raises(StorageError) as caught:
        keys.load_key(store, require_keyring=True)
    frames = traceback.TracebackException.from_exception(caught.value, capture_locals=True)
    text = "".join(frames.format())
    assert "made =" in text  # the frame that holds the pending key is shown
    for key in pending.keys:
        assert repr(key) not in text and key.hex() not in text


def test_public_values_compare_as_the_dataclasses_did() -> None:
    """Equal by type and fields, never to a plain tuple or to another type with the same
    fields; immutable; ``replace`` gives a changed copy."""
    from dataclasses import FrozenInstanceError

    from mcp_client_auth import KeyringProbe, Protection
    from mcp_client_auth.store import RecordRead, SetAside

    probe = KeyringProbe("works", "b", "r")
    assert probe == KeyringProbe("works", "b", "r")
    assert probe != ("works", "b", "r")
    assert Protection("memory", "this process", "") != SetAside("memory", "this process", "")
    assert RecordRead(None) != (None, None)
    assert ("memory", "this process", "") not in {Protection("memory", "this process")}
    assert Protection("memory", "this process") in {Protection("memory", "this process")}
    with pytest.raises(FrozenInstanceError):
        probe.verdict = "missing"
    assert probe.replace(verdict="missing") == KeyringProbe("missing", "b", "r")
    assert probe.verdict == "works"
