"""Numbers a server sends: finite and in range before use, JSON without NaN or Infinity.

A device login whose authorization server answers ``"expires_in": NaN`` used to poll without
pause for ever: the deadline became NaN, every comparison with it was false, and the login's
``timeout=`` was ignored. Whatever numbers a device endpoint sends, the login now ends within
its timeout with a typed error, after a handful of polls at most (counted, not timed).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from mcp_client_auth import (
    AuthorizationError,
    IdentityAssertion,
    IdJagExchange,
    MCPAuthError,
    OAuthClientProvider,
    RegistrationError,
    TokenError,
    TokenStore,
)
from mcp_client_auth.login.device import DeviceLogin
from mcp_client_auth.untrusted import parse_json, server_number

from .drive import COMBOS, assert_clean, outcome, own_transport, provider
from .hostile import Hostile, Reply, Seen
from .test_own_client import get_through, live

__all__ = ["live"]  # the fixture, shared with test_own_client

pytestmark = pytest.mark.timeout(120)

DEVICE_ENDPOINT = "https://auth.example.com/device_authorization"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# a hostile token endpoint answers "authorization_pending" this many times, then ends the login
# with access_denied: without the fix a NaN deadline polls until then instead of hanging the test
POLL_BUDGET = 40
GOOD = '"device_code": "dc-1", "user_code": "WDJB-MJHT", "verification_uri": "https://auth.example.com/device"'


def device_servers(numbers: str) -> Hostile:
    """A device endpoint answering ``{GOOD, numbers}`` as raw JSON text; polls stay pending."""
    servers = Hostile()
    servers.asm_extra["device_authorization_endpoint"] = DEVICE_ENDPOINT
    body = ("{" + GOOD + (", " + numbers if numbers else "") + "}").encode()

    def device(seen: Seen) -> Reply | None:
        return Reply.raw(body) if seen.url == DEVICE_ENDPOINT else None

    servers.hooks["other"] = device
    servers.hooks["unknown"] = device
    polls: list[int] = []

    def poll(seen: Seen) -> Reply:
        polls.append(1)
        error = "access_denied" if len(polls) >= POLL_BUDGET else "authorization_pending"
        return Reply.json({"error": error}, 400)

    servers.on_grant(DEVICE_GRANT, poll)
    return servers


REFUSED = (
    r"device authorization (answer|response).*(not valid JSON|NaN|too large|negative|non-numeric)"
)
WAITED = r"no approval within 0.5 s|device code expired"

DEVICE_CASES = [
    ('"expires_in": NaN, "interval": 1', REFUSED),
    ('"expires_in": 600, "interval": NaN', REFUSED),
    ('"expires_in": Infinity', REFUSED),
    ('"expires_in": 600, "interval": -Infinity', REFUSED),
    ('"expires_in": 1e999', REFUSED),
    ('"expires_in": 600, "interval": 1e999', REFUSED),
    ('"expires_in": 1' + "0" * 400 + "", REFUSED),
    ('"expires_in": -600', REFUSED),
    ('"expires_in": 600, "interval": -1', REFUSED),
    ('"expires_in": true', REFUSED),
    ('"expires_in": 600, "interval": "soon"', REFUSED),
    ('"expires_in": 0, "interval": 0', WAITED),
    ('"expires_in": -0, "interval": -0', WAITED),
    ('"expires_in": 1e-400, "interval": 1e-400', WAITED),
    ('"expires_in": 1e300, "interval": 1e300', WAITED),
    ('"expires_in": "600", "interval": "0"', WAITED),
    ("", WAITED),
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize(("numbers", "pattern"), DEVICE_CASES)
def test_device_login_with_hostile_numbers_ends_within_the_timeout(
    numbers: str, pattern: str, combo: str
) -> None:
    servers = device_servers(numbers)
    auth = provider(servers, login=DeviceLogin(output=io.StringIO()), timeout=0.5, combo=combo)
    error = outcome(servers, auth, combo=combo)
    assert_clean(error, AuthorizationError, pattern, servers.secrets)
    assert len(servers.token_requests(DEVICE_GRANT)) <= 2


# -- every server JSON: no NaN, no Infinity ------------------------------------------------------


def test_token_response_with_nan_is_refused() -> None:
    servers = Hostile()
    body = b'{"access_token": "at-1", "token_type": "Bearer", "expires_in": NaN}'
    servers.on_grant("authorization_code", lambda seen: Reply.raw(body))
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"not valid JSON.*NaN", servers.secrets)


def test_registration_with_infinite_secret_expiry_is_refused() -> None:
    servers = Hostile()
    body = b'{"client_id": "c-1", "client_secret_expires_at": Infinity}'
    servers.hooks["register"] = lambda seen: Reply(
        201, body, [("content-type", "application/json")]
    )
    error = outcome(servers, provider(servers))
    assert_clean(error, RegistrationError, r"registration response .*not valid JSON.*Infinity")


def test_registration_with_a_negative_secret_expiry_is_refused() -> None:
    servers = Hostile()
    servers.hooks["register"] = lambda seen: Reply.json(
        {"client_id": "c-1", "client_secret_expires_at": -5}, 201
    )
    error = outcome(servers, provider(servers))
    assert_clean(error, RegistrationError, r"negative client_secret_expires_at")


def test_identity_provider_answer_with_nan_is_refused() -> None:
    servers = Hostile()
    idp = "https://idp.example.com/token"
    servers.hooks["other"] = lambda seen: Reply.raw(
        b'{"access_token": "jag", "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag",'
        b' "expires_in": NaN}'
    )
    auth = IdentityAssertion(
        servers.resource,
        client_id="mcp-client",
        assertion=IdJagExchange(idp, id_token="id-token-SECRET", client_id="idp-client"),
        transport=own_transport(servers),
    )
    error = outcome(servers, auth)
    assert_clean(error, TokenError, r"not valid JSON.*NaN", ["id-token-SECRET"])


def test_error_answer_with_nan_is_still_a_typed_error() -> None:
    servers = Hostile()
    servers.on_grant(
        "authorization_code",
        lambda seen: Reply.raw(b'{"error": "invalid_grant", "retry": NaN}', 400),
    )
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"failed with HTTP 400", servers.secrets)


# -- the helpers themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1e999}',
        b'{"a": -1e999}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}",  # 33 levels
        b'{"a": "x\\ud800"}',  # a lone surrogate: no UTF-8 store or log can hold it
        b'{"a\\udfff": 1}',
        b"[" * 1_000_000,
    ],
)
def test_parse_json_refuses_what_is_not_plain_json(body: bytes) -> None:
    with pytest.raises(TokenError, match="not valid JSON"):
        parse_json(body, what="token response", url="https://as.example/token", error=TokenError)


def test_parse_json_keeps_tiny_and_negative_zero_numbers() -> None:
    doc = parse_json(b'{"a": 1e-400, "b": -0, "c": -0.0}', what="x", url="u")
    assert doc == {"a": 0.0, "b": 0, "c": 0.0}


def test_parse_json_keeps_32_levels_and_surrogate_pairs() -> None:
    doc = parse_json(
        b'{"a": ' + b"[" * 31 + b"]" * 31 + b', "b": "\\ud83d\\ude00"}', what="x", url="u"
    )
    assert doc["b"] == "\U0001f600"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "not a number"),
        (float("inf"), "too large"),
        (-float("inf"), "too large"),
        (10**400, "too large"),
        ("9" * 400, "too large"),
        (True, "non-numeric"),
        (None, "non-numeric"),
        ("1e3", "non-numeric"),
        ("²", "non-numeric"),
        ("-5", "non-numeric"),
        ([5], "non-numeric"),
        (-1, "negative"),
        (-1e-300, "negative"),
        (7200, "more than"),
    ],
)
def test_server_number_refuses(value: Any, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        server_number(value, name="n", low=0, high=3600, what="the answer", error=TokenError)


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (-0.0, 0.0), ("42", 42.0), (1.5, 1.5), (1e300, 3600.0)]
)
def test_server_number_accepts_and_caps(value: Any, expected: float) -> None:
    got = server_number(value, name="n", low=0, high=3600, cap=True, what="x", error=TokenError)
    assert got == expected and str(got) == str(expected)


# -- a token endpoint that answers each poll too slowly ------------------------------------------


@pytest.mark.parametrize(("lib", "mode"), [c.split("-") for c in COMBOS])
def test_a_trickling_token_endpoint_does_not_stretch_the_device_login(
    live: Hostile, lib: str, mode: str
) -> None:
    """Each poll may take only what is left of ``timeout=`` (and a few seconds' grace), not the
    minute every flow request may take: a server answering a poll a byte at a time ends the
    login at its timeout, as "no approval", not a minute later as the poll's own error."""
    device = f"{live.issuer}/device_authorization"
    live.asm_extra["device_authorization_endpoint"] = device
    body = ("{" + GOOD + ', "expires_in": 600, "interval": 1}').encode()
    live.hooks["unknown"] = lambda seen: Reply.raw(body) if seen.url == device else None
    sent: list[int] = []

    def trickle(seen: Seen) -> Reply:
        def chunks() -> Iterator[bytes]:
            for _ in range(1200):  # a minute at 50 ms a byte
                sent.append(1)
                yield b" "

        return Reply(200, chunks(), [("content-type", "application/json")], pause=0.05)

    live.on_grant(DEVICE_GRANT, trickle)
    auth = OAuthClientProvider(
        live.resource,
        store=TokenStore.memory(),
        login=DeviceLogin(output=io.StringIO()),
        timeout=1.0,
    )
    with pytest.raises(MCPAuthError) as caught:
        get_through(lib, mode, auth, live.resource)
    assert_clean(caught.value, AuthorizationError, r"no approval within 1 s")
    assert len(live.token_requests(DEVICE_GRANT)) == 1
    assert 0 < len(sent) < 1200  # the client hung up long before the server was done


# -- a DPoP nonce is sent back on every proof: it must be one ------------------------------------


@pytest.mark.parametrize(
    ("nonce", "retried"),
    [("n-1_ok", True), ("n" * 10_000, False), ('bad"quote', False), ("caf\u00e9", False)],
)
def test_only_a_well_formed_dpop_nonce_is_used(nonce: str, retried: bool) -> None:
    servers = Hostile()
    servers.asm_extra["dpop_signing_alg_values_supported"] = ["ES256"]
    servers.on_grant(
        "authorization_code",
        lambda seen: Reply.json({"error": "use_dpop_nonce"}, 400, [("dpop-nonce", nonce)]),
    )
    error = outcome(servers, provider(servers, dpop=True))
    assert_clean(error, TokenError, r"use_dpop_nonce", servers.secrets)
    sent = servers.token_requests("authorization_code")
    assert len(sent) == (2 if retried else 1)


def test_server_nonce_rule() -> None:
    from mcp_client_auth.untrusted import MAX_NONCE, server_nonce

    assert server_nonce("abc-_.~!#$") == "abc-_.~!#$"
    assert server_nonce("x" * MAX_NONCE) == "x" * MAX_NONCE
    for bad in (None, "", "x" * (MAX_NONCE + 1), "a b", 'a"b', "a\\b", "a\x1bb", "é"):
        assert server_nonce(bad) is None
