"""What the third review round's fixes in flow_http, registration and flow promise beyond the
reviewer's own tests: a registration update that cannot be sent falls back as a refused one
does, a stored registration_access_token no header can carry is dropped, an unsendable URL's
error is bounded, and a logout forgets even when the stored revocation endpoint breaks the
URL rules.

Every server here is a fixed response in memory (``MockTransport``); nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mcp_client_auth import MCPAuthError, RegistrationError, TokenStore
from mcp_client_auth._portal import run_sync
from mcp_client_auth.effects import HttpRequest
from mcp_client_auth.metadata import UrlRules
from mcp_client_auth.registration import ClientSettings, update_registration
from mcp_client_auth.tokens import ClientRegistration

from .drive import outcome, provider, send
from .hostile import Hostile

RAT = "rat-SECRET-0123456789abcdef"


def _stored(token: str) -> ClientRegistration:
    return ClientRegistration(
        client_id="c1",
        redirect_uris=("http://127.0.0.1:5555/callback",),
        issuer="https://as.example.com",
        kind="dynamic",
        registration_access_token=token,
        registration_client_uri="https://as.example.com/reg/c1",
    )


def test_registration_update_that_cannot_be_sent_falls_back() -> None:
    """The driver throws the request's typed error into the flow (a dead network, a URL no
    request can be made of): the update ends with ``None``, as when the server refuses it, so
    the caller asks with the stored client or registers anew instead of failing the login."""
    flow = update_registration(
        ClientSettings("test"),
        _stored(RAT),
        scope="read write",
        rules=UrlRules.for_resource("https://mcp.example.com/mcp"),
    )
    effect = next(flow)
    assert isinstance(effect, HttpRequest) and effect.method == "PUT"
    with pytest.raises(StopIteration) as ended:
        flow.throw(RegistrationError("could not reach https://as.example.com/reg/c1"))
    assert ended.value.value is None


def test_stored_registration_access_token_a_header_cannot_carry_is_dropped() -> None:
    """A record written before the registration answer was checked: the token is dropped on
    reading (so no update is attempted with it), the rest of the registration kept."""
    data = _stored(RAT + "\r\nX-Injected: yes").to_dict()
    again = ClientRegistration.from_dict(data)
    assert again.registration_access_token is None
    assert again.client_id == "c1" and again.registration_client_uri is not None
    assert ClientRegistration.from_dict(_stored(RAT).to_dict()).registration_access_token == RAT


def test_unsendable_server_url_error_is_bounded() -> None:
    """The error for a 70,000-character endpoint quotes it, cleaned and bounded, and says it
    was the server's."""
    servers = Hostile(asm_extra={"token_endpoint": "https://auth.example.com/" + "d" * 70_000})
    error = outcome(servers, provider(servers))
    assert isinstance(error, MCPAuthError), repr(error)
    assert len(str(error)) < 2000, len(str(error))
    assert "the server gave" in str(error)


def test_logout_forgets_when_the_stored_revocation_endpoint_breaks_the_url_rules() -> None:
    """A stored record whose revocation endpoint the URL rules refuse (plain http to another
    host): nothing is sent there, the tokens are forgotten, and the refusal is in ``errors``."""
    servers = Hostile()
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert send(servers, auth).status_code == 200
    record = run_sync(store.get(servers.resource))
    assert record is not None and record.tokens is not None
    metadata = {**(record.server_metadata or {}), "revocation_endpoint": "http://evil.test/r"}
    run_sync(store.put(replace(record, server_metadata=metadata)))
    result = asyncio.run(auth.alogout())
    assert result.forgotten and not result.revoked
    assert result.errors and "https" in result.errors[0]
    again = run_sync(store.get(servers.resource))
    assert again is None or again.tokens is None
