"""The authorization code grant, driven as a generator: every request and store write it makes."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mcp_client_auth.effects import CompleteLogin, ShowDeviceCode, StartLogin
from mcp_client_auth.errors import AuthorizationError, LoginRequiredError
from mcp_client_auth.login.base import UseDeviceFlow

from .sansio import (
    AUTHORIZE,
    DEVICE,
    ISSUER,
    REDIRECT,
    REGISTER,
    RESOURCE,
    SERVER_METADATA,
    TOKEN,
    Session,
    Steps,
    answer,
    challenge,
    dynamic_client,
    flow,
    form,
    query,
    stored_record,
    tokens_body,
)


def login_until_the_callback(steps: Steps, session: Session) -> CompleteLogin:
    """Discovery, the login's start and the registration: up to the browser's round trip."""
    steps.discover()
    record = steps.saved()
    assert record.issuer == ISSUER and record.client is None and record.tokens is None
    start = steps.expect(StartLogin)
    assert start.redirect_uri is None  # nothing stored to keep
    steps.send(session)
    registration = steps.request("POST", REGISTER)
    steps.send(answer(registration, 201, {"client_id": "client-1", "redirect_uris": [REDIRECT]}))
    assert steps.saved().client is not None
    return steps.expect(CompleteLogin)


def test_a_login_registers_sends_the_user_with_pkce_and_exchanges_the_code() -> None:
    auth = flow()
    steps = Steps(auth.authorize(challenge()))
    session = Session()
    login = login_until_the_callback(steps, session)
    params = query(login.url)
    assert login.url.startswith(AUTHORIZE + "?") and login.session is session
    assert params["response_type"] == "code" and params["client_id"] == "client-1"
    assert params["redirect_uri"] == REDIRECT and params["resource"] == RESOURCE
    assert params["code_challenge_method"] == "S256" and params["state"] == login.state
    assert not session.offered  # the server offers no device grant
    steps.send(f"{REDIRECT}?code=the-code&state={login.state}&iss={ISSUER}")
    exchange = steps.request("POST", TOKEN)
    sent = form(exchange)
    assert sent["grant_type"] == "authorization_code" and sent["code"] == "the-code"
    assert sent["redirect_uri"] == REDIRECT and sent["resource"] == RESOURCE
    verifier = sent["code_verifier"].encode()
    challenge_of_verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
    assert challenge_of_verifier.rstrip(b"=").decode() == params["code_challenge"]
    steps.send(answer(exchange, 200, tokens_body("at-1", refresh_token="rt-1")))
    stored = steps.saved()
    assert stored.tokens is not None and stored.tokens.access_token == "at-1"
    assert steps.done and steps.result == stored.tokens and auth.record == stored


def test_a_callback_from_another_issuer_is_refused_before_the_token_request() -> None:
    steps = Steps(flow().authorize(challenge()))
    login = login_until_the_callback(steps, Session())
    with pytest.raises(AuthorizationError, match="mix-up"):
        steps.send(f"{REDIRECT}?code=c&state={login.state}&iss=https://evil.example")


def test_a_callback_of_another_login_is_refused() -> None:
    steps = Steps(flow().authorize(challenge()))
    login_until_the_callback(steps, Session())
    with pytest.raises(AuthorizationError, match="state"):
        steps.send(f"{REDIRECT}?code=c&state=another-login&iss={ISSUER}")


def test_no_login_where_none_may_be_shown() -> None:
    with pytest.raises(LoginRequiredError, match="login-here"):
        Steps(flow(interactive=False, login_hint=lambda: "login-here").authorize(None))


def test_a_server_without_pkce_is_refused_before_any_login() -> None:
    metadata = {k: v for k, v in SERVER_METADATA.items() if k != "code_challenge_methods_supported"}
    steps = Steps(flow().authorize(challenge()))
    with pytest.raises(Exception, match="PKCE S256"):
        steps.discover(server_metadata=metadata)


def test_a_login_that_reaches_nobody_hands_over_to_the_device_grant() -> None:
    metadata = {**SERVER_METADATA, "device_authorization_endpoint": DEVICE}
    steps = Steps(flow().authorize(challenge()))
    session = Session()
    steps.discover(server_metadata=metadata)
    steps.saved()
    steps.expect(StartLogin)
    steps.send(session)
    registration = steps.request("POST", REGISTER)
    steps.send(answer(registration, 201, {"client_id": "browser-client"}))
    steps.saved()
    steps.expect(CompleteLogin)
    assert session.offered  # told before complete() that the device grant is there
    steps.send(UseDeviceFlow())
    # the browser client lists only the code grant: the device grant registers its own
    device_registration = steps.request("POST", REGISTER)
    assert b"device_code" in (device_registration.body or b"")
    steps.send(answer(device_registration, 201, {"client_id": "device-client"}))
    assert steps.saved().client is not None
    authorization = steps.request("POST", DEVICE)
    assert form(authorization)["client_id"] == "device-client"
    code = {"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": ISSUER + "/d"}
    steps.send(answer(authorization, 200, code))
    assert steps.expect(ShowDeviceCode).user_code == "ABCD-EFGH"


def test_a_forgotten_client_is_registered_again_and_the_login_starts_over_once() -> None:
    auth = flow()
    steps = Steps(auth.authorize(challenge()))
    login = login_until_the_callback(steps, Session())
    steps.send(f"{REDIRECT}?code=c&state={login.state}&iss={ISSUER}")
    exchange = steps.request("POST", TOKEN)
    steps.send(answer(exchange, 401, {"error": "invalid_client"}))
    forgotten = steps.saved()
    assert forgotten.client is None and forgotten.tokens is None
    # from the start: discovery again, a new login, a new registration
    second = login_until_the_callback(steps, Session())
    assert second.state != login.state
    steps.send(f"{REDIRECT}?code=c2&state={second.state}&iss={ISSUER}")
    again = steps.request("POST", TOKEN)
    assert form(again)["code"] == "c2"
    with pytest.raises(Exception, match="invalid_client"):  # once only
        steps.send(answer(again, 401, {"error": "invalid_client"}))


def test_a_stored_client_keeps_its_redirect_uri_and_needs_no_registration() -> None:
    auth = flow(stored_record(client=dynamic_client(scope=None)))
    steps = Steps(auth.authorize(challenge()))
    steps.discover()
    steps.saved()
    assert steps.expect(StartLogin).redirect_uri == REDIRECT
    steps.send(Session())
    assert steps.saved().client == dynamic_client(scope=None)  # no request in between
    login = steps.expect(CompleteLogin)
    assert query(login.url)["client_id"] == "client-1"
