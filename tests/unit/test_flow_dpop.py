"""DPoP at the token endpoint (RFC 9449), driven as a generator: a proof on every request,
one retry with the nonce the server asks for, the nonce kept for the next request, and
tokens refused whose binding is not what was asked."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mcp_client_auth.dpop import DPoPKey
from mcp_client_auth.errors import TokenError
from mcp_client_auth.tokens import TokenSet

from .sansio import (
    NOW,
    SERVER_METADATA,
    TOKEN,
    Steps,
    answer,
    flow,
    form,
    stored_record,
    tokens_body,
)

METADATA = {**SERVER_METADATA, "dpop_signing_alg_values_supported": ["ES256"]}
EXPIRED = TokenSet("at-old", "DPoP", expires_at=NOW - 10, refresh_token="rt-old")
DPOP_TOKENS = tokens_body("at-new", token_type="DPoP")


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def dpop_flow(**settings: Any) -> Any:
    record = stored_record(EXPIRED, server_metadata=METADATA, dpop_key=DPoPKey.generate())
    return flow(record, **settings)


def test_the_token_endpoint_is_asked_once_more_with_the_nonce_it_wants() -> None:
    auth = dpop_flow()
    steps = Steps(auth.refresh())
    first = steps.request("POST", TOKEN)
    proof = claims(first.headers["DPoP"])
    assert (proof["htm"], proof["htu"]) == ("POST", TOKEN) and "nonce" not in proof
    steps.send(answer(first, 400, {"error": "use_dpop_nonce"}, {"DPoP-Nonce": "n-1"}))
    second = steps.request("POST", TOKEN)
    again = claims(second.headers["DPoP"])
    assert again["nonce"] == "n-1" and again["jti"] != proof["jti"]
    assert form(second) == form(first)
    steps.send(answer(second, 200, DPOP_TOKENS))
    assert steps.saved().tokens is not None
    assert steps.done and steps.result.token_type == "DPoP"
    assert auth.resource_nonce() is None  # the authorization server's nonce is its own


def test_the_nonce_is_sent_on_the_next_request_without_a_round_trip() -> None:
    auth = dpop_flow()
    steps = Steps(auth.refresh())
    first = steps.request("POST", TOKEN)
    steps.send(answer(first, 200, DPOP_TOKENS | {"refresh_token": "rt-2"}, {"DPoP-Nonce": "n-2"}))
    steps.saved()
    auth.record = stored_record(
        EXPIRED, server_metadata=METADATA, dpop_key=auth.record.dpop_key if auth.record else None
    )
    steps = Steps(auth.refresh())
    assert claims(steps.request("POST", TOKEN).headers["DPoP"])["nonce"] == "n-2"


def test_a_second_nonce_request_is_not_retried() -> None:
    steps = Steps(dpop_flow().refresh())
    first = steps.request("POST", TOKEN)
    steps.send(answer(first, 400, {"error": "use_dpop_nonce"}, {"DPoP-Nonce": "n-1"}))
    second = steps.request("POST", TOKEN)
    with pytest.raises(TokenError, match="use_dpop_nonce"):
        steps.send(answer(second, 400, {"error": "use_dpop_nonce"}, {"DPoP-Nonce": "n-2"}))


def test_a_dpop_bound_token_without_a_proof_is_refused() -> None:
    steps = Steps(dpop_flow(dpop=False).refresh())
    request = steps.request("POST", TOKEN)
    assert "DPoP" not in request.headers  # dpop=False: no proof, whatever is stored
    with pytest.raises(TokenError, match="no DPoP proof was sent"):
        steps.send(answer(request, 200, DPOP_TOKENS))


def test_a_bearer_token_is_refused_where_dpop_is_required() -> None:
    steps = Steps(dpop_flow(dpop=True).refresh())
    request = steps.request("POST", TOKEN)
    with pytest.raises(TokenError, match="dpop=True requires"):
        steps.send(answer(request, 200, tokens_body("at-bearer")))


def test_a_resource_that_does_not_take_dpop_loses_the_key() -> None:
    auth = dpop_flow()
    refused = TokenSet("at-old", "DPoP", expires_at=NOW + 3600)
    stored = stored_record(refused, server_metadata=METADATA, dpop_key=DPoPKey.generate())
    steps = Steps(auth.obtain(failed=refused, challenge=None, dpop_refused=True))
    steps.load(stored)
    dropped = steps.saved()
    assert dropped.dpop_key is None and dropped.tokens is None
