"""Client credentials and the JWT bearer grant, driven as generators: no login, one token
request authenticated as configured, the record bound before the credentials leave."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from mcp_client_auth.effects import GetSubjectToken, StartLogin
from mcp_client_auth.errors import TokenError
from mcp_client_auth.flow import CLIENT_CREDENTIALS_GRANT, JWT_BEARER_GRANT
from mcp_client_auth.machine_grant import MachineGrant
from mcp_client_auth.registration import ClientSettings

from .sansio import ISSUER, RESOURCE, SERVER_METADATA, TOKEN, Steps, answer, challenge, flow, form

SECRET = "cs-9f2a"


def machine(grant: MachineGrant, **client: str) -> Steps:
    auth = flow(client=ClientSettings(client_name="svc", **client), machine=grant)
    return Steps(auth.authorize(challenge(scope="read")))


def test_client_credentials_authenticate_with_basic_and_ask_for_the_scope() -> None:
    steps = machine(MachineGrant(CLIENT_CREDENTIALS_GRANT), client_id="svc", client_secret=SECRET)
    steps.discover()
    bound = steps.saved()  # bound to the issuer before the secret is sent
    assert bound.issuer == ISSUER and bound.client is not None
    assert bound.client.token_endpoint_auth_method == "client_secret_basic"
    request = steps.request("POST", TOKEN)
    assert form(request) == {
        "grant_type": "client_credentials",
        "resource": RESOURCE,
        "scope": "read",
    }
    expected = base64.b64encode(f"svc:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    steps.send(answer(request, 200, {"access_token": "at-m", "token_type": "Bearer"}))
    stored = steps.saved()
    assert stored.tokens is not None and stored.tokens.access_token == "at-m"
    assert steps.done and steps.result == stored.tokens


def test_client_secret_post_where_the_server_takes_only_that() -> None:
    metadata = {**SERVER_METADATA, "token_endpoint_auth_methods_supported": ["client_secret_post"]}
    steps = machine(MachineGrant(CLIENT_CREDENTIALS_GRANT), client_id="svc", client_secret=SECRET)
    steps.discover(server_metadata=metadata)
    steps.saved()
    request = steps.request("POST", TOKEN)
    assert "Authorization" not in request.headers
    assert form(request)["client_secret"] == SECRET and form(request)["client_id"] == "svc"


def test_the_jwt_bearer_grant_asks_the_caller_for_an_assertion_for_this_server() -> None:
    asked: list[tuple[str, str]] = []

    def source(audience: str, resource: str) -> str:
        asked.append((audience, resource))
        return "the-assertion"

    steps = machine(MachineGrant(JWT_BEARER_GRANT, assertion=source))
    steps.discover()
    assert steps.saved().client is not None
    wanted = steps.expect(GetSubjectToken)
    get: Callable[[], str] = wanted.source  # type: ignore[assignment]
    steps.send(get())
    assert asked == [(ISSUER, RESOURCE)]
    request = steps.request("POST", TOKEN)
    assert form(request) == {
        "grant_type": JWT_BEARER_GRANT,
        "resource": RESOURCE,
        "scope": "read",
        "assertion": "the-assertion",
    }
    with pytest.raises(TokenError, match="invalid_grant"):  # a refused assertion: no retry
        steps.send(answer(request, 400, {"error": "invalid_grant"}))


def test_a_machine_grant_never_starts_a_login() -> None:
    steps = machine(MachineGrant(CLIENT_CREDENTIALS_GRANT), client_id="svc", client_secret=SECRET)
    steps.discover()
    steps.saved()
    assert not isinstance(steps.effect, StartLogin)
    request = steps.request("POST", TOKEN)
    with pytest.raises(TokenError):
        steps.send(answer(request, 401, {"error": "invalid_client"}))
