"""Logout (RFC 7009), driven as a generator: the refresh token revoked first, then the access
token; the tokens forgotten whatever the server answers."""

from __future__ import annotations

import pytest

from mcp_client_auth.effects import DeleteRecord, SaveRecord
from mcp_client_auth.errors import TokenError
from mcp_client_auth.logout import LogoutResult
from mcp_client_auth.tokens import TokenSet

from .sansio import NOW, REVOKE, SERVER_METADATA, Steps, answer, flow, form, stored_record

TOKENS = TokenSet("at-1", expires_at=NOW + 3600, refresh_token="rt-1")


def test_both_tokens_are_revoked_then_forgotten() -> None:
    auth = flow()
    steps = Steps(auth.logout())
    steps.load(stored_record(TOKENS))
    first = steps.request("POST", REVOKE)
    assert form(first) == {
        "token": "rt-1",
        "token_type_hint": "refresh_token",
        "client_id": "client-1",
    }
    steps.send(answer(first, 200))
    second = steps.request("POST", REVOKE)
    assert form(second)["token"] == "at-1" and form(second)["token_type_hint"] == "access_token"
    steps.send(answer(second, 200))
    forgotten = steps.saved()
    assert forgotten.tokens is None and forgotten.client is not None
    assert steps.done
    assert steps.result == LogoutResult(("refresh_token", "access_token"), True, True, ())


def test_a_server_that_wants_a_secret_field_of_a_public_client_gets_an_empty_one() -> None:
    steps = Steps(flow().logout())
    steps.load(stored_record(TOKENS))
    first = steps.request("POST", REVOKE)
    refusal = {"error": "invalid_request", "error_description": "client_secret is required"}
    steps.send(answer(first, 400, refusal))
    again = steps.request("POST", REVOKE)
    assert form(again)["client_secret"] == "" and form(again)["token"] == "rt-1"
    steps.send(answer(again, 200))
    # asked once, sent on every request after
    assert form(steps.request("POST", REVOKE))["client_secret"] == ""


def test_an_unreachable_server_still_logs_out_here() -> None:
    steps = Steps(flow().logout())
    steps.load(stored_record(TOKENS))
    steps.request("POST", REVOKE)
    steps.throw(TokenError("the token revocation request could not be sent"))
    assert steps.saved().tokens is None
    assert steps.done and steps.result.forgotten and steps.result.revoked == ()
    assert steps.result.errors == ("refresh_token: the token revocation request could not be sent",)


def test_a_refusal_is_reported_not_raised() -> None:
    steps = Steps(flow().logout())
    steps.load(stored_record(TOKENS))
    steps.send(answer(steps.request("POST", REVOKE), 400, {"error": "unsupported_token_type"}))
    steps.send(answer(steps.request("POST", REVOKE), 200))
    steps.saved()
    assert steps.result.revoked == ("access_token",)
    assert steps.result.errors == ("refresh_token: HTTP 400 (unsupported_token_type)",)


def test_an_unforeseen_error_forgets_the_tokens_before_it_is_raised() -> None:
    steps = Steps(flow().logout())
    steps.load(stored_record(TOKENS))
    steps.request("POST", REVOKE)
    steps.throw(RuntimeError("a driver bug"))
    assert steps.expect(SaveRecord).record.tokens is None
    with pytest.raises(RuntimeError, match="a driver bug"):  # once the write is done
        steps.send(None)


def test_forget_client_deletes_the_whole_record() -> None:
    auth = flow()
    steps = Steps(auth.logout(revoke=False, forget_client=True))
    steps.load(stored_record(TOKENS))
    steps.expect(DeleteRecord)
    steps.send(None)
    assert steps.done and auth.record is None
    assert steps.result == LogoutResult((), True, True, ())


def test_without_a_revocation_endpoint_the_tokens_are_only_forgotten() -> None:
    metadata = {k: v for k, v in SERVER_METADATA.items() if k != "revocation_endpoint"}
    steps = Steps(flow().logout())
    steps.load(stored_record(TOKENS, server_metadata=metadata))
    assert steps.saved().tokens is None
    assert steps.result == LogoutResult((), True, False, ())


def test_nothing_stored_is_nothing_to_do() -> None:
    steps = Steps(flow().logout())
    steps.load(None)
    assert steps.done and steps.result == LogoutResult()
