"""Grants with no person present: client credentials, or a JWT bearer assertion (RFC 7523).

The client authenticates as the user configured it (``client_secret_basic``, or
``client_secret_post`` where the server takes only that; ``private_key_jwt`` with a private
key; none for an anonymous assertion). The record is bound to the authorization server before
the credentials leave, so should the grant fail they still go to no other server.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..effects import Effect, GetSubjectToken
from ..errors import ConfigurationError
from ..flow_types import JWT_BEARER_GRANT
from ..machine_grant import MachineGrant
from ..tokens import ANONYMOUS, ClientRegistration, TokenSet

if TYPE_CHECKING:
    from .base import FlowContext, GrantRequest, StartOver

__all__ = ["obtain"]


def _auth_method(
    machine: MachineGrant, secret: str | None, server_metadata: Mapping[str, Any]
) -> str:
    """How the client authenticates at the token endpoint."""
    if machine.private_key is not None:
        return "private_key_jwt"
    if not secret:
        return "none"
    supported = server_metadata.get("token_endpoint_auth_methods_supported")
    if supported and "client_secret_basic" not in supported and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


def obtain(
    flow: FlowContext, request: GrantRequest
) -> Generator[Effect, Any, TokenSet | StartOver]:
    settings = flow.settings
    machine = settings.machine
    if machine is None:
        raise ConfigurationError("no client credentials or assertion were configured")
    found, scope = request.found, request.scope
    client_id = settings.client.client_id or ""
    secret = settings.client.client_secret
    client = ClientRegistration(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=_auth_method(machine, secret, found.server_metadata),
        issuer=found.issuer,
        kind="pre-registered" if client_id else ANONYMOUS,
    )
    record = replace(request.record, client=client)
    yield from flow.save(record)  # bound before the credentials leave
    form = {"grant_type": machine.grant_type, "resource": record.resource_indicator}
    if scope:
        form["scope"] = scope
    jwt_bearer = machine.grant_type == JWT_BEARER_GRANT
    if jwt_bearer and machine.token_exchange is not None:
        # SEP-990: the ID token traded for an ID-JAG at the enterprise IdP (RFC 8693)
        form["assertion"] = yield from machine.token_exchange.exchange(
            audience=found.issuer, resource=record.resource_indicator, scope=scope or None
        )
    elif jwt_bearer:
        # RFC 7523 2.1: the caller's assertion (an ID-JAG, a workload identity token)
        if machine.assertion is None:
            raise ConfigurationError("the JWT bearer grant needs an assertion to present")
        source = functools.partial(machine.assertion, found.issuer, record.resource_indicator)
        form["assertion"] = yield GetSubjectToken(source)
    tokens = yield from flow.token_endpoint.request(
        record,
        client,
        form,
        requested_scope=scope,
        what="jwt-bearer grant" if jwt_bearer else "client credentials grant",
    )
    yield from flow.save(replace(record, tokens=tokens))
    return tokens
