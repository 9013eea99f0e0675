"""A server that echoes the request in its error answer: nothing sent comes back out.

Every error the library builds from a server's answer (the resource, the authorization server's
token, device and revocation endpoints, registration, the identity provider of an ID-JAG
exchange) is read by one reader, :func:`mcp_client_auth.untrusted.read_error`: what the request
carried (tokens, codes, verifiers, client secrets, assertions, ID tokens, the Basic and DPoP
headers) is cut out, also URL-encoded, base64-encoded or split across lines; control and bidi
characters are shown as escapes; a body nested too deeply is simply no error text.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any
from urllib.parse import unquote

import pytest

from mcp_client_auth import (
    AuthorizationError,
    IdentityAssertion,
    IdJagExchange,
    RegistrationError,
    TokenError,
    TokenStore,
)
from mcp_client_auth.login.device import DeviceLogin

from .drive import (
    COMBOS,
    assert_clean,
    everything_said,
    leaked,
    outcome,
    own_transport,
    provider,
    send,
)
from .hostile import Hostile, Reply, Seen

pytestmark = pytest.mark.timeout(90)

IDP = "https://idp.example.com/token"
ID_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJlbWFpbCI6ImFAYi5jIn0.c2lnbmF0dXJlLW9mLXRoZS1pZHA"
)
IDP_SECRET = "idp-secret+/=Zq81"
DEVICE_ENDPOINT = "https://auth.example.com/device_authorization"
ZWJ = "\u200d"
CONTROL = "\x1b[2J\x9b31m\u202egnp.exe\u2066\u200d\r\nINFO forged"


def later() -> float:
    import time

    return time.time() + 10 * 3600  # every access token has expired: a refresh is due


def echo_everything(seen: Seen) -> str:
    """All a hostile server can echo: the raw body, each form value as sent, URL-decoded,
    base64-encoded and split across lines, the credentials headers raw and decoded."""
    parts = [f"body={seen.body.decode('latin-1')}"]
    for key, value in seen.form.items():
        split = "\n".join(value[i : i + 5] for i in range(0, len(value), 5))
        b64 = base64.b64encode(value.encode()).decode()
        joined = ZWJ.join(value)
        parts.append(f"{key}={value} b64={b64} split={split} zw={joined}")
    for name in ("authorization", "dpop"):
        header = seen.headers.get(name)
        if header:
            parts.append(f"{name}: {header}")
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() == "basic":
                parts.append("decoded: " + unquote(base64.b64decode(credentials).decode()))
    if seen.body.startswith(b"{"):
        parts.append(json.dumps(json.loads(seen.body)))
    return " | ".join(parts) + CONTROL


def echo_reply(status: int = 400) -> Any:
    return lambda seen: Reply.json(
        {"error": "invalid_request" + CONTROL, "error_description": echo_everything(seen)},
        status,
    )


def deep_reply(status: int = 400) -> Any:
    return lambda seen: Reply.raw(b'{"error": ' + b"[" * 100_000, status)


def pieces(secrets: set[str], size: int = 12) -> set[str]:
    """Every run of ``size`` characters of every secret: a part of one is a leak too."""
    return {s[i : i + size] for s in secrets for i in range(0, max(1, len(s) - size + 1))}


def assert_no_echo(error: object, kind: type, pattern: str, secrets: set[str]) -> None:
    assert_clean(error, kind, pattern, pieces(secrets))
    said = everything_said(error)  # type: ignore[arg-type]
    for char in ("\x1b", "\x9b", "\u202e", "\u2066", "\u200d", "\r", "\n"):
        assert char not in str(error) and char not in repr(error)
    assert "\\x1b" in str(error) or "HTTP" in str(error), said


# -- the identity provider of an ID-JAG exchange -------------------------------------------------


def id_jag(servers: Hostile, auth_method: str, combo: str = "httpx-sync") -> IdentityAssertion:
    return IdentityAssertion(
        servers.resource,
        transport=own_transport(servers, combo),
        client_id="mcp-client",
        store=TokenStore.memory(),
        assertion=IdJagExchange(
            IDP,
            id_token=ID_TOKEN,
            client_id="idp-client",
            client_secret=IDP_SECRET,
            auth_method=auth_method,
        ),
    )


def idp_secrets() -> set[str]:
    basic = base64.b64encode(b"idp-client:" + IDP_SECRET.replace("+", "%2B").encode()).decode()
    return {ID_TOKEN, IDP_SECRET, basic, *ID_TOKEN.split(".")}


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_identity_provider_echo_leaks_no_id_token_or_secret(auth_method: str, combo: str) -> None:
    servers = Hostile()
    servers.hooks["other"] = echo_reply()
    error = outcome(servers, id_jag(servers, auth_method, combo), combo=combo)
    assert_no_echo(error, TokenError, r"identity provider refused .*HTTP 400", idp_secrets())
    assert isinstance(error, TokenError) and error.description and "…" in error.description


@pytest.mark.parametrize("combo", COMBOS)
def test_identity_provider_deeply_nested_answer_is_a_typed_error(combo: str) -> None:
    servers = Hostile()
    servers.hooks["other"] = deep_reply()
    error = outcome(servers, id_jag(servers, "client_secret_basic", combo), combo=combo)
    assert_clean(error, TokenError, r"identity provider refused .*HTTP 400", idp_secrets())


def test_identity_provider_issuing_an_echo_as_token_type_leaks_nothing() -> None:
    servers = Hostile()
    servers.hooks["other"] = lambda seen: Reply.json(
        {"access_token": "jag", "issued_token_type": seen.form["subject_token"] + CONTROL}
    )
    error = outcome(servers, id_jag(servers, "client_secret_post"))
    assert_no_echo(error, TokenError, r"not an ID-JAG", idp_secrets())


# -- the authorization server's token endpoint --------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_token_endpoint_echo_of_a_confidential_client_leaks_nothing(combo: str) -> None:
    servers = Hostile(confidential=True)
    store = TokenStore.memory()
    assert send(servers, provider(servers, store, combo=combo), combo=combo).status_code == 200
    servers.on_grant("refresh_token", echo_reply())
    error = outcome(servers, provider(servers, store, clock=later, combo=combo), combo=combo)
    assert_no_echo(error, TokenError, r"token refresh .*HTTP 400", servers.secrets)


@pytest.mark.parametrize("combo", COMBOS)
def test_code_exchange_echo_leaks_no_code_or_verifier(combo: str) -> None:
    servers = Hostile()
    servers.on_grant("authorization_code", echo_reply())
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert_no_echo(error, TokenError, r"code exchange .*HTTP 400", servers.secrets)


# -- registration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("reply", [echo_reply(), deep_reply()], ids=["echo", "deeply-nested"])
def test_registration_refusal_is_clean(reply: Any, combo: str) -> None:
    servers = Hostile()
    servers.hooks["register"] = reply
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert_clean(error, RegistrationError, r"refused to register this client \(HTTP 400", set())
    assert "\x1b" not in str(error) and "\u202e" not in str(error)


def test_registration_update_echo_leaks_no_registration_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 7592: the update carries the registration access token; a refusal that echoes it
    is logged (a new client is registered instead) without it."""
    servers = Hostile(required_scope="admin")
    secrets = {"rat-Zx81Qp0LmN7vB2kT"}

    def register(seen: Seen) -> Reply | None:
        if seen.method == "PUT":
            return echo_reply()(seen)
        reply = servers.correct("register", seen)
        doc = json.loads(reply.body)  # type: ignore[arg-type]
        doc["registration_access_token"] = "rat-Zx81Qp0LmN7vB2kT"
        doc["registration_client_uri"] = f"{servers.issuer}/register"
        doc["scope"] = "read write"
        return Reply.json(doc, reply.status)

    servers.hooks["register"] = register
    auth = provider(servers, scopes=None)
    with caplog.at_level(logging.DEBUG, logger="mcp_client_auth"):
        outcome(servers, auth)
    assert any(s.method == "PUT" for s in servers.seen), "no registration update was tried"
    assert not leaked(caplog.text, pieces(secrets | servers.secrets))
    assert "\x1b" not in caplog.text and "\u202e" not in caplog.text


# -- revocation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidential", [False, True])
def test_revocation_echo_leaks_nothing(confidential: bool) -> None:
    servers = Hostile(confidential=confidential)
    store = TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200

    def echo(seen: Seen) -> Reply:
        return Reply.json(
            {"error": seen.form["token"] + CONTROL, "error_description": echo_everything(seen)},
            400,
        )

    servers.hooks["revoke"] = echo
    auth = provider(servers, store)
    result = auth.logout()
    said = " ".join(result.errors)
    assert result.errors and "HTTP 400" in said
    assert not leaked(said, pieces(servers.secrets))
    assert "\x1b" not in said and "\u202e" not in said


# -- device authorization ----------------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("reply", [echo_reply(), deep_reply()], ids=["echo", "deeply-nested"])
def test_device_authorization_refusal_is_clean(reply: Any, combo: str) -> None:
    servers = Hostile(confidential=True)
    servers.asm_extra["device_authorization_endpoint"] = DEVICE_ENDPOINT
    servers.hooks["other"] = lambda seen: reply(seen) if seen.url == DEVICE_ENDPOINT else None
    servers.hooks["unknown"] = servers.hooks["other"]
    auth = provider(servers, login=DeviceLogin(output=io.StringIO()), timeout=5, combo=combo)
    error = outcome(servers, auth, combo=combo)
    assert_clean(error, AuthorizationError, r"device authorization request failed", servers.secrets)
    assert "\x1b" not in str(error) and "\u202e" not in str(error)


# -- the resource ----------------------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_resource_echoing_the_token_in_a_malformed_challenge_is_logged_without_it(
    combo: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers = Hostile()
    store = TokenStore.memory()
    assert send(servers, provider(servers, store, combo=combo), combo=combo).status_code == 200

    def resource(seen: Seen) -> Reply:
        token = seen.headers.get("authorization", "").partition(" ")[2]
        value = f'Bearer realm="x" {token}' + "\u202e"
        return Reply.json({"error": "unauthorized"}, 401, [("www-authenticate", value)])

    servers.hooks["resource"] = resource
    with caplog.at_level(logging.DEBUG, logger="mcp_client_auth"):
        outcome(servers, provider(servers, store, combo=combo), combo=combo)
    assert "malformed WWW-Authenticate" in caplog.text
    assert not leaked(caplog.text, pieces(servers.secrets))
    assert "\u202e" not in caplog.text
