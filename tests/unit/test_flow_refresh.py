"""The refresh grant and ``obtain``'s choice between the stored token, a refresh and a login,
driven as generators."""

from __future__ import annotations

import pytest

from mcp_client_auth.effects import StartLogin
from mcp_client_auth.errors import TokenError
from mcp_client_auth.tokens import TokenSet

from .sansio import (
    NOW,
    RESOURCE,
    TOKEN,
    Session,
    Steps,
    answer,
    flow,
    form,
    stored_record,
    tokens_body,
)

EXPIRED = TokenSet("at-old", expires_at=NOW - 10, refresh_token="rt-old", scope="read")


def test_a_refresh_sends_the_refresh_token_and_stores_the_answer() -> None:
    auth = flow(stored_record(EXPIRED))
    steps = Steps(auth.refresh())
    request = steps.request("POST", TOKEN)
    assert form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-old",
        "resource": RESOURCE,
        "client_id": "client-1",
    }
    steps.send(answer(request, 200, tokens_body("at-new")))  # no new refresh token
    stored = steps.saved()
    assert stored.tokens is not None and stored.tokens.access_token == "at-new"
    assert stored.tokens.refresh_token == "rt-old"  # the old one stays usable
    assert stored.tokens.expires_at == NOW + 3600
    assert steps.done and steps.result == stored.tokens


def test_a_refused_refresh_token_is_forgotten() -> None:
    auth = flow(stored_record(EXPIRED))
    steps = Steps(auth.refresh())
    request = steps.request("POST", TOKEN)
    steps.send(answer(request, 400, {"error": "invalid_grant"}))
    forgotten = steps.saved()
    assert forgotten.tokens is None and forgotten.client is not None
    assert steps.done and steps.result is None


def test_a_refused_dynamic_client_is_forgotten_with_its_tokens() -> None:
    steps = Steps(flow(stored_record(EXPIRED)).refresh())
    request = steps.request("POST", TOKEN)
    steps.send(answer(request, 401, {"error": "invalid_client"}))
    forgotten = steps.saved()
    assert forgotten.tokens is None and forgotten.client is None
    assert steps.done and steps.result is None


def test_a_server_error_keeps_the_stored_tokens() -> None:
    steps = Steps(flow(stored_record(EXPIRED)).refresh())
    request = steps.request("POST", TOKEN)
    with pytest.raises(TokenError, match="try again later"):
        steps.send(answer(request, 503, {}))  # raised with nothing saved


def test_obtain_uses_a_token_another_process_stored() -> None:
    auth = flow(stored_record(EXPIRED))
    fresh = TokenSet("at-theirs", expires_at=NOW + 3600, refresh_token="rt-2")
    steps = Steps(auth.obtain(failed=EXPIRED, challenge=None))
    steps.load(stored_record(fresh))
    assert steps.done and steps.result == fresh  # no request at all


def test_obtain_refreshes_an_expired_token() -> None:
    auth = flow()
    steps = Steps(auth.obtain(failed=None, challenge=None))
    steps.load(stored_record(EXPIRED))
    request = steps.request("POST", TOKEN)
    assert form(request)["grant_type"] == "refresh_token"
    steps.send(answer(request, 200, tokens_body("at-2")))
    assert steps.saved().tokens is not None
    assert steps.done and steps.result.access_token == "at-2"


def test_obtain_logs_in_when_the_refresh_token_is_refused() -> None:
    auth = flow()
    steps = Steps(auth.obtain(failed=None, challenge=None))
    steps.load(stored_record(EXPIRED))
    request = steps.request("POST", TOKEN)
    steps.send(answer(request, 400, {"error": "invalid_grant"}))
    assert steps.saved().tokens is None
    steps.discover()  # a login runs discovery afresh
    assert steps.saved().tokens is None
    steps.expect(StartLogin)
    steps.send(Session())
    assert auth.record is not None and auth.record.tokens is None


def test_obtain_without_anything_stored_lets_the_request_go_out_bare() -> None:
    steps = Steps(flow().obtain(failed=None, challenge=None))
    steps.load(None)
    assert steps.done and steps.result is None  # the server's 401 will say where to log in
