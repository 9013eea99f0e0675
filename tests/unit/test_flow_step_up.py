"""Step-up (``insufficient_scope``), driven as a generator: the wider scope asked for with the
same client where the server allows it, a new registration only when it refuses."""

from __future__ import annotations

import json

import pytest

from mcp_client_auth.effects import CompleteLogin, StartLogin
from mcp_client_auth.errors import AuthorizationError
from mcp_client_auth.flow import AuthFlow
from mcp_client_auth.tokens import TokenSet

from .sansio import (
    ISSUER,
    NOW,
    REDIRECT,
    REGISTER,
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

GRANTED = TokenSet("at-read", expires_at=NOW + 3600, refresh_token="rt-1", scope="read")
INSUFFICIENT = challenge(error="insufficient_scope", scope="write")


def until_the_login(steps: Steps, *, discovery: bool = True) -> CompleteLogin:
    if discovery:
        steps.discover()
    steps.saved()
    assert steps.expect(StartLogin).redirect_uri == REDIRECT  # the stored client's
    steps.send(Session())
    steps.saved()
    return steps.expect(CompleteLogin)


def stepping_up() -> tuple[AuthFlow, Steps]:
    auth = flow(stored_record(GRANTED))
    steps = Steps(auth.obtain(failed=GRANTED, challenge=INSUFFICIENT))
    steps.load(stored_record(GRANTED))
    return auth, steps


def test_a_step_up_asks_for_both_scopes_with_the_same_client_and_no_refresh() -> None:
    _, steps = stepping_up()
    login = until_the_login(steps)  # no refresh request: a refresh cannot widen the scope
    params = query(login.url)
    assert params["scope"] == "read write" and params["client_id"] == "client-1"
    steps.send(f"{REDIRECT}?code=c&state={login.state}&iss={ISSUER}")
    exchange = steps.request("POST", TOKEN)
    assert form(exchange)["client_id"] == "client-1"
    steps.send(answer(exchange, 200, tokens_body("at-rw", scope="read write")))
    stored = steps.saved()
    assert stored.client == dynamic_client()  # the client_id survived the step-up
    assert steps.done and steps.result.scope == "read write"


def test_a_refused_wider_scope_registers_a_client_for_it_and_logs_in_again() -> None:
    auth, steps = stepping_up()
    login = until_the_login(steps)
    steps.send(f"{REDIRECT}?error=invalid_scope&state={login.state}")
    registration = steps.request("POST", REGISTER)
    document = json.loads(registration.body or b"{}")
    assert set(document["scope"].split()) == {"read", "write"}
    steps.send(answer(registration, 201, {"client_id": "client-2", "redirect_uris": [REDIRECT]}))
    assert steps.saved().client is not None
    second = until_the_login(steps, discovery=False)  # the discovery just done is reused
    assert query(second.url)["client_id"] == "client-2"
    assert query(second.url)["scope"] == "read write"
    with pytest.raises(AuthorizationError, match="invalid_scope"):  # only once
        steps.send(f"{REDIRECT}?error=invalid_scope&state={second.state}")
    assert auth.record is not None and auth.record.client is not None
    assert auth.record.client.client_id == "client-2"
