"""Property tests (hypothesis): whatever a server or a login returns, the flow's parsing of
token responses, authorization callbacks, registration responses and stored records raises
nothing but the typed errors, and what it accepts is well-formed.

tests/unit/test_properties_metadata.py already covers the WWW-Authenticate parser, URL
canonicalisation and the metadata validators. No input is excluded: the inputs that once hit a
known bug (see FINDINGS.md: F3, F9) are fixed and run with the rest, pinned by ``@example`` and
by plain tests of their own (a callback with an unbalanced ``[``, a stored record with a huge
expiry).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mcp_client_auth import (
    AuthorizationError,
    RegistrationError,
    ServerRecord,
    TokenError,
    TokenSet,
    TokenStore,
)
from mcp_client_auth.callback import check_callback
from mcp_client_auth.effects import HttpRequest, HttpResponse
from mcp_client_auth.metadata import UrlRules
from mcp_client_auth.registration import ClientSettings, register_dynamically
from mcp_client_auth.token_endpoint import parse_token_response
from mcp_client_auth.tokens import MAX_LIFETIME

from .drive import outcome, provider
from .hostile import ISSUER, RESOURCE, Hostile, Reply

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

STATE = "state-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
REDIRECT = "http://127.0.0.1:53682/callback"
TOKEN_URL = f"{ISSUER}/token"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["Bearer", "bearer", "DPoP", "mac", "3600", " 60 ", "-1", "", "１２"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
TOKEN_FIELDS = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "error",
    "error_description",
    "id_token",
]
token_documents = st.dictionaries(st.sampled_from(TOKEN_FIELDS), json_values, max_size=8)


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    token_documents.map(_dump),
    json_values.map(_dump),
)
statuses = st.one_of(
    st.sampled_from([200, 200, 200, 201, 400, 401, 403, 500, 503]),
    st.integers(min_value=100, max_value=599),
)


# -- the token response ------------------------------------------------------------------------


@SETTINGS
@given(statuses, bodies, st.one_of(st.none(), st.text(max_size=20)))
@example(200, b'{"access_token": "a", "token_type": "Bearer", "expires_in": NaN}', None)
@example(200, b'{"access_token": "a", "token_type": "bearer", "expires_in": "  7 "}', None)
@example(200, b'{"access_token": "a", "token_type": "Bearer", "expires_in": "\\u00b2"}', None)
@example(400, b'{"error": 5, "error_description": ["x"]}', None)
def test_token_response_parsing_raises_only_token_error(
    status: int, body: bytes, scope: str | None
) -> None:
    response = HttpResponse(status, {"content-type": "application/json"}, body, TOKEN_URL)
    now = time.time()
    try:
        tokens = parse_token_response(
            response, what="token refresh", requested_scope=scope, now=now
        )
    except TokenError as exc:
        assert str(exc) and len(str(exc)) < 2000
        assert exc.status_code in (None, status)
        return
    assert status == 200
    assert isinstance(tokens, TokenSet)
    assert isinstance(tokens.access_token, str) and tokens.access_token
    assert tokens.token_type in ("Bearer", "DPoP")
    assert tokens.refresh_token is None or isinstance(tokens.refresh_token, str)
    if tokens.expires_at is not None:
        assert math.isfinite(tokens.expires_at)
        assert now <= tokens.expires_at <= now + MAX_LIFETIME
    assert access_token_not_in_repr(tokens)


def access_token_not_in_repr(tokens: TokenSet) -> bool:
    shown = repr(tokens) + str(tokens)
    return tokens.access_token not in shown or len(tokens.access_token) < 4


@SLOW
@given(token_documents)
def test_token_response_through_the_provider(doc: dict[str, Any]) -> None:
    """The same, end to end: a hostile token endpoint behind the whole flow."""
    body = _dump(doc)
    servers = Hostile()
    servers.on_grant("authorization_code", lambda seen: Reply.raw(body))
    store = TokenStore.memory()
    result = outcome(servers, provider(servers, store))
    if isinstance(result, Exception):
        assert isinstance(result, (TokenError, AuthorizationError)), repr(result)


# -- the authorization callback ----------------------------------------------------------------

values = st.one_of(
    st.sampled_from([STATE, ISSUER, ISSUER + "/", "", "access_denied", "code-1"]),
    st.text(max_size=20),
)
callback_params = st.lists(
    st.tuples(st.sampled_from(["code", "state", "iss", "error", "error_description", "x"]), values),
    max_size=6,
)
callbacks = st.one_of(
    callback_params.map(lambda ps: f"{REDIRECT}?{urlencode(ps)}"),
    callback_params.map(lambda ps: f"{REDIRECT}?" + "&".join(f"{k}={v}" for k, v in ps)),
    st.text(max_size=120),
    st.text(max_size=80).map(lambda t: f"{REDIRECT}?{t}"),
)


@SETTINGS
@given(callbacks, st.booleans())
@example(f"{REDIRECT}?code=c&state={STATE}&iss={ISSUER}", True)
@example(f"{REDIRECT}?state={STATE}&state=other&code=c", False)
@example(f"{REDIRECT}?code=c&code=d&state={STATE}", False)
@example(f"{REDIRECT}?code=c&state={STATE}&error=server_error", False)
@example(f"{REDIRECT}#code=c&state={STATE}", False)
@example("?", False)
def test_callback_parsing_raises_only_authorization_error(url: str, iss_supported: bool) -> None:
    metadata = {"authorization_response_iss_parameter_supported": iss_supported}
    try:
        code = check_callback(url, state=STATE, issuer=ISSUER, metadata=metadata)
    except AuthorizationError as exc:
        assert str(exc) and len(str(exc)) < 2000
        return
    query = dict(p.split("=", 1) if "=" in p else (p, "") for p in urlsplit(url).query.split("&"))
    assert isinstance(code, str) and code
    assert query.get("state") == STATE or f"state={STATE}" in url
    assert "error" not in query


def test_callback_with_unbalanced_bracket_is_an_authorization_error() -> None:
    url = f"http://[::1/callback?code=c&state={STATE}"
    with pytest.raises(AuthorizationError):
        check_callback(url, state=STATE, issuer=ISSUER, metadata={})


# -- the registration response ---------------------------------------------------------------


@SETTINGS
@given(
    statuses,
    st.one_of(
        bodies,
        st.dictionaries(
            st.sampled_from(
                [
                    "client_id",
                    "client_secret",
                    "token_endpoint_auth_method",
                    "redirect_uris",
                    "client_secret_expires_at",
                    "registration_access_token",
                ]
            ),
            json_values,
            max_size=6,
        ).map(_dump),
    ),
)
@example(201, b'{"client_id": " ", "client_secret": ""}')  # found by a run: blank id, empty secret
@example(201, b'{"client_id": "c1", "client_secret": ""}')
def test_registration_response_raises_only_registration_error(status: int, body: bytes) -> None:
    steps = register_dynamically(
        ClientSettings("test"),
        issuer=ISSUER,
        server_metadata={"registration_endpoint": f"{ISSUER}/register"},
        redirect_uri=REDIRECT,
        scope=None,
        rules=UrlRules(),
    )
    request = next(steps)
    assert isinstance(request, HttpRequest)
    try:
        steps.send(HttpResponse(status, {}, body, f"{ISSUER}/register"))
    except StopIteration as done:
        client = done.value
        assert status in (200, 201)
        assert isinstance(client.client_id, str) and client.client_id
        assert client.issuer == ISSUER
        assert client.client_secret is None or isinstance(client.client_secret, str)
        assert client.client_id.strip()
        assert client.client_secret is None or client.client_secret not in repr(client)
        assert client.client_secret != ""  # an empty secret is no secret: a public client
        assert (client.token_endpoint_auth_method == "none") == (client.client_secret is None) or (
            b"token_endpoint_auth_method" in body
        )
        return
    except RegistrationError as exc:
        assert str(exc)
        return
    raise AssertionError("the registration step asked for something else")


# -- records read back from a store -------------------------------------------------------

record_documents = st.fixed_dictionaries(
    {"resource": st.one_of(st.just(RESOURCE), json_values)},
    optional={
        "issuer": json_values,
        "resource_metadata": json_values,
        "server_metadata": json_values,
        "client": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(
                    [
                        "client_id",
                        "client_secret",
                        "redirect_uris",
                        "issuer",
                        "kind",
                        "client_secret_expires_at",
                        "token_endpoint_auth_method",
                    ]
                ),
                json_values,
            ),
        ),
        "tokens": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(
                    ["access_token", "token_type", "expires_at", "refresh_token", "scope"]
                ),
                json_values,
            ),
        ),
        "extra": json_values,
        "version": json_values,
    },
)


@SLOW
@given(record_documents)
def test_store_get_of_any_decrypted_document_never_raises(doc: dict[str, Any]) -> None:
    """A record that decrypts but is not what we wrote (another version, a bug, a shared Redis
    written by something else) reads as absent (logged), never as a crash."""
    store = TokenStore.memory()

    async def roundtrip() -> ServerRecord | None:
        await store.kv.put(RESOURCE, doc, collection="mcp-client-auth")
        return await store.get(RESOURCE)

    record = asyncio.run(roundtrip())
    assert record is None or isinstance(record, ServerRecord)


def test_store_get_of_a_record_with_a_huge_expiry_reads_as_absent() -> None:
    store = TokenStore.memory()
    doc = {"resource": RESOURCE, "tokens": {"access_token": "a", "expires_at": 10**400}}

    async def roundtrip() -> ServerRecord | None:
        await store.kv.put(RESOURCE, doc, collection="mcp-client-auth")
        return await store.get(RESOURCE)

    assert asyncio.run(roundtrip()) is None
