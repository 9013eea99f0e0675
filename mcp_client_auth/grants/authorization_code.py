"""The authorization code grant with PKCE: a person logs in through a browser.

The login (:class:`~mcp_client_auth.login.base.Login`) fixes the redirect URI first; the client
is then chosen, updated (RFC 7592) or registered for it; the person is sent to the
authorization endpoint and the callback checked (``state``, RFC 9207 ``iss``) before its code
is exchanged. A client the server forgot, or refused a wider scope, is registered again and the
login starts over, once. A login that can reach nobody (no browser, no terminal) answers
:class:`~mcp_client_auth.login.base.UseDeviceFlow`, and the device grant takes over.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..callback import check_callback
from ..dpop_policy import proof_key
from ..effects import CompleteLogin, Effect, StartLogin
from ..errors import AuthorizationError, TokenError
from ..login.base import LoginSession, UseDeviceFlow
from ..pkce import PKCE, new_state
from ..registration import choose_client, register_dynamically, update_registration
from ..scopes import registration_scope, widened
from ..tokens import ClientRegistration, ServerRecord, TokenSet
from . import device
from .base import FlowContext, GrantRequest, StartOver

__all__ = ["obtain", "openid_provider"]

logger = logging.getLogger("mcp_client_auth.flow")


def openid_provider(metadata: Mapping[str, Any]) -> bool:
    """Whether the authorization server is an OpenID provider, as its metadata says.

    OpenID Provider Metadata requires ``id_token_signing_alg_values_supported``, which plain
    OAuth metadata (RFC 8414) does not define; and only an OpenID provider offers the
    ``openid`` scope. Either is the sign. ``offline_access`` alone is not: OAuth servers list
    it too (for a refresh token), without OpenID Connect's rules for it.
    """
    algorithms = metadata.get("id_token_signing_alg_values_supported")
    scopes = metadata.get("scopes_supported")
    return bool(algorithms and isinstance(algorithms, list)) or (
        isinstance(scopes, list) and "openid" in scopes
    )


def _unless_another_port(redirect_uri: str | None, fixed_port: int | None) -> str | None:
    """A stored registration's redirect URI, unless the user fixed another port: then None,
    so the login listens on the user's port (an ``ssh -L`` tunnel waits there)."""
    if redirect_uri is None or fixed_port is None:
        return redirect_uri
    try:
        port = urlsplit(redirect_uri).port
    except ValueError:
        port = None
    return redirect_uri if port == fixed_port else None


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _client_for(
    flow: FlowContext, request: GrantRequest, redirect_uri: str
) -> Generator[Effect, Any, tuple[ClientRegistration, bool]]:
    """The client this login uses at ``redirect_uri``, and whether it asks beyond the scope
    the client was registered for (a server may refuse that: ``invalid_scope``)."""
    settings, found, scope = flow.settings, request.found, request.scope
    stored = request.record.client
    metadata = found.server_metadata
    client = choose_client(
        settings.client,
        stored,
        issuer=found.issuer,
        server_metadata=metadata,
        redirect_uri=redirect_uri,
        scope=scope,
    )
    if client is not None:
        return client, False
    if stored is not None and stored.kind == "dynamic" and stored.issuer == found.issuer:
        wider = widened(stored, scope)
        if redirect_uri in stored.redirect_uris:
            # Registered for fewer scopes than this login asks (a step-up). The client_id
            # must survive it: servers bind MCP sessions to it. Widen the registration
            # where the server manages registrations (RFC 7592); else ask with the stored
            # client, since most servers let a client ask for more than it registered, and
            # register anew only when this server refuses that.
            client = yield from update_registration(
                settings.client, stored, scope=wider, rules=settings.urls
            )
            if client is None:
                return stored, True
            return client, False
        # registered for another redirect URI (a port the user fixed): move the
        # registration there (RFC 7592: the same client_id), else register anew
        client = yield from update_registration(
            settings.client, stored, scope=wider, rules=settings.urls, redirect_uri=redirect_uri
        )
        logger.info(
            "the client for %s was registered for %s; this login uses %s: %s",
            request.record.resource,
            stored.redirect_uri,
            redirect_uri,
            "registration updated (same client id)" if client else "registering anew",
        )
        if client is not None:
            return client, False
    registered = yield from register_dynamically(
        settings.client,
        issuer=found.issuer,
        server_metadata=metadata,
        redirect_uri=redirect_uri,
        scope=registration_scope(scope, found.resource_metadata, metadata),
        rules=settings.urls,
        protocol_version=settings.protocol_version,
        narrow_scope=scope,
        assumed_because=found.assumed_because,
    )
    return registered, False


def _authorization_url(
    flow: FlowContext,
    request: GrantRequest,
    record: ServerRecord,
    client: ClientRegistration,
    redirect_uri: str,
    state: str,
    pkce: PKCE,
) -> str:
    metadata, scope = request.found.server_metadata, request.scope
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "resource": record.resource_indicator,
    }
    if scope:
        params["scope"] = scope
    if "offline_access" in scope.split() and openid_provider(metadata):
        # OpenID Connect Core 1.0 section 11: an OpenID provider grants offline_access (the
        # refresh token) only with prompt=consent; it ignores the scope otherwise. A server
        # that is not an OpenID provider is never sent prompt, which it may refuse.
        params["prompt"] = "consent"
    dpop_key = proof_key(flow.settings.dpop, record)
    if dpop_key is not None:
        params["dpop_jkt"] = dpop_key.thumbprint  # binds the code (RFC 9449 10)
    endpoint = flow.settings.urls.check(
        metadata["authorization_endpoint"], what="the authorization endpoint"
    )
    return _with_query(endpoint, params)


def obtain(
    flow: FlowContext, request: GrantRequest
) -> Generator[Effect, Any, TokenSet | StartOver]:
    settings, found, scope = flow.settings, request.found, request.scope
    stored = request.record.client
    preferred = settings.redirect_uri
    if preferred is None and stored is not None and stored.issuer == found.issuer:
        preferred = _unless_another_port(stored.redirect_uri, settings.fixed_port)
    session: LoginSession = yield StartLogin(preferred)
    redirect_uri = session.redirect_uri
    client, beyond_registration = yield from _client_for(flow, request, redirect_uri)
    record = replace(request.record, client=client)
    yield from flow.save(record)

    pkce = PKCE.generate()
    state = new_state()
    url = _authorization_url(flow, request, record, client, redirect_uri, state, pkce)
    check = functools.partial(
        check_callback, state=state, issuer=found.issuer, metadata=found.server_metadata
    )
    if found.server_metadata.get("device_authorization_endpoint"):
        session.offer_device_flow()
    callback = yield CompleteLogin(session, url, state, settings.login_timeout, check)
    if isinstance(callback, UseDeviceFlow):  # the login can reach nobody here
        logger.info("no browser could be opened for %s; using the device flow", record.issuer)
        return (yield from device.obtain(flow, replace(request, record=record)))
    start_over = request.may_start_over
    try:
        code = check(callback)
    except AuthorizationError as exc:
        if beyond_registration and exc.error == "invalid_scope" and start_over:
            return (yield from _register_for(flow, request, record, redirect_uri))
        raise
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
        "resource": record.resource_indicator,
    }
    try:
        tokens = yield from flow.token_endpoint.request(
            record, client, form, requested_scope=scope, what="authorization code exchange"
        )
    except TokenError as exc:
        if exc.error == "invalid_client" and client.kind == "dynamic" and start_over:
            logger.info("the authorization server forgot this client; registering again")
            yield from flow.save(replace(record, client=None, tokens=None))
            return StartOver(found=None)
        if exc.error == "invalid_scope" and beyond_registration and start_over:
            return (yield from _register_for(flow, request, record, redirect_uri))
        raise
    yield from flow.save(replace(record, tokens=tokens))
    return tokens


def _register_for(
    flow: FlowContext, request: GrantRequest, record: ServerRecord, redirect_uri: str
) -> Generator[Effect, Any, StartOver]:
    """The server refused the stored client the wider scope (``invalid_scope``): the one case
    where a step-up takes a new registration (and so a new client_id, which ends the MCP
    sessions a server bound to the old one). Register for it, then log in again."""
    found, stored = request.found, record.client
    assert stored is not None
    logger.info(
        "%s refused client %r the scope %r; registering a new client for it",
        found.issuer,
        stored.client_id,
        request.scope,
    )
    wider = widened(stored, request.scope)
    client = yield from register_dynamically(
        flow.settings.client,
        issuer=found.issuer,
        server_metadata=found.server_metadata,
        redirect_uri=redirect_uri,
        scope=registration_scope(wider, found.resource_metadata, found.server_metadata),
        rules=flow.settings.urls,
        protocol_version=flow.settings.protocol_version,
        narrow_scope=wider,
    )
    yield from flow.save(replace(record, client=client))
    return StartOver(found=found)
