"""Revocation at a server that wants a ``client_secret`` field even from a public client (the mcp
SDK's), and at one that refuses whatever is sent: what is retried, and what is said."""

from __future__ import annotations

from typing import Any

import pytest

from .fake_servers import FakeServers
from .test_provider_flow import COMBOS, call, provider

REFUSAL = {"error": "invalid_request", "error_description": "client_secret: Field required"}


class SecretFieldServers(FakeServers):
    """``/revoke`` answers ``REFUSAL`` to a form without ``client_secret`` (or to every form,
    with ``always``), as the mcp SDK's revocation handler does."""

    def __init__(self, *, always: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.always = always
        self.revocation_forms: list[dict[str, str]] = []

    def handler(self, request: Any) -> Any:
        if request.url.path == "/revoke":
            body = request.read().decode()
            form = dict(p.split("=", 1) for p in body.split("&") if "=" in p)
            self.revocation_forms.append(form)
            if self.always or "client_secret" not in form:
                module = __import__(type(request).__module__.split(".")[0])
                return module.Response(400, json=REFUSAL)
        return super().handler(request)


@pytest.mark.parametrize("combo", COMBOS)
def test_a_public_client_sends_an_empty_secret_after_exactly_that_refusal(combo: str) -> None:
    servers = SecretFieldServers()
    auth = provider(servers)
    assert call(combo, servers, auth).status_code == 200
    result = auth.logout()
    assert result.revoked == ("refresh_token", "access_token")
    assert result.errors == ()
    # the refusal once, then the empty field for both tokens
    assert [f.get("client_secret") for f in servers.revocation_forms] == [None, "", ""]
    assert servers.revoked == ["refresh_token", "access_token"]


def test_a_refusal_that_stands_is_reported_precisely() -> None:
    servers = SecretFieldServers(always=True)
    auth = provider(servers)
    assert call("httpx2-sync", servers, auth).status_code == 200
    result = auth.logout()
    assert result.revoked == ()
    assert result.forgotten and auth.tokens is None
    assert result.errors == (
        "refresh_token: HTTP 400 (invalid_request): client_secret: Field required",
        "access_token: HTTP 400 (invalid_request): client_secret: Field required",
    )
    assert len(servers.revocation_forms) == 3  # one retry, not one per token
