"""Who this client is to an authorization server, in the MCP specification's preference.

1. pre-registered: the user's ``client_id`` (and ``client_secret``);
2. a client ID metadata document: the ``client_metadata_url`` is the client id, where the
   server advertises ``client_id_metadata_document_supported``;
3. dynamic registration (RFC 7591) as a native application with a loopback redirect URI.

Also: how the client authenticates at the token endpoint, as it was registered.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from .effects import Effect, HttpRequest, HttpResponse
from .error_answers import read_error
from .errors import DiscoveryError, MCPAuthError, RegistrationError
from .flow_types import ClientSettings
from .server_json import parse_json, server_number
from .tokens import ClientRegistration, header_safe_or_none, is_vschar
from .url_rules import UrlRules

__all__ = [
    "ClientSettings",
    "choose_client",
    "client_auth",
    "covers_scope",
    "register_dynamically",
    "update_registration",
]

logger = logging.getLogger("mcp_client_auth.registration")

MAX_SECRET_EXPIRY = 253402300799.0  # 9999-12-31T23:59:59Z: later expiries are kept as this
# a registration refused for its scope (RFC 7591 3.2.2); the server may take a narrower one
SCOPE_REFUSALS = ("invalid_client_metadata", "invalid_scope")


def _auth_method_for_secret(server_metadata: Mapping[str, Any]) -> str:
    supported = server_metadata.get("token_endpoint_auth_methods_supported")
    if not supported or "client_secret_basic" in supported:
        return "client_secret_basic"
    if "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


def choose_client(
    settings: ClientSettings,
    stored: ClientRegistration | None,
    *,
    issuer: str,
    server_metadata: Mapping[str, Any],
    redirect_uri: str,
    scope: str | None = None,
) -> ClientRegistration | None:
    """The registration to use without a registration request, or ``None`` to register.

    A stored registration counts only when it was issued by this same issuer, lists this
    redirect URI, and was registered for every scope of ``scope`` (an authorization server may
    refuse a scope the client was not registered for: a step-up registers again, with the
    union): nothing issued by one authorization server is ever sent to another.
    """
    if settings.client_id:
        method = _auth_method_for_secret(server_metadata) if settings.client_secret else "none"
        return ClientRegistration(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=method,
            redirect_uris=(redirect_uri,),
            issuer=issuer,
            kind="pre-registered",
        )
    if settings.client_metadata_url and server_metadata.get(
        "client_id_metadata_document_supported"
    ):
        return ClientRegistration(
            client_id=settings.client_metadata_url,
            token_endpoint_auth_method="none",
            redirect_uris=(redirect_uri,),
            issuer=issuer,
            kind="metadata-document",
        )
    if (
        stored is not None
        and stored.kind == "dynamic"
        and stored.issuer == issuer
        and redirect_uri in stored.redirect_uris
        and covers_scope(stored, scope)
    ):
        return stored
    return None


def covers_scope(client: ClientRegistration, scope: str | None) -> bool:
    """Whether ``client`` was registered for every scope of ``scope`` (or for no scope in
    particular)."""
    return client.scope is None or not scope or set(scope.split()) <= set(client.scope.split())


def _document(
    settings: ClientSettings,
    *,
    redirect_uri: str | None,
    scope: str | None,
    grant_types: list[str] | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_name": settings.client_name,
        "grant_types": grant_types or ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    if redirect_uri is not None:
        document["redirect_uris"] = [redirect_uri]
        document["response_types"] = ["code"]
    else:
        document["response_types"] = []
    if settings.application_type:
        document["application_type"] = settings.application_type
    if scope:
        document["scope"] = scope
    return document


def register_dynamically(
    settings: ClientSettings,
    *,
    issuer: str,
    server_metadata: Mapping[str, Any],
    redirect_uri: str | None,
    scope: str | None,
    rules: UrlRules,
    protocol_version: str | None = None,
    grant_types: list[str] | None = None,
    narrow_scope: str | None = None,
    assumed_because: str | None = None,
) -> Generator[Effect, Any, ClientRegistration]:
    """RFC 7591 registration as a public native client (PKCE, no secret requested).

    ``narrow_scope``: the least this client needs, where ``scope`` asks for more (everything
    the server advertises). A server that refuses a registration for its scope
    (``invalid_client_metadata`` or ``invalid_scope``) is asked again for ``narrow_scope``, then
    for no scope at all, which RFC 7591 leaves to the server's default (oidc-provider, as it
    comes, registers only the scopes of its own configuration, never a resource's).

    ``assumed_because``: the endpoint is the 2025-03-26 default, assumed for want of metadata
    (and why); a 404 there then means no OAuth at all, said as a :class:`DiscoveryError`,
    not as a refusal to register.
    """
    endpoint = server_metadata.get("registration_endpoint")
    if not endpoint:
        hint = (
            " (it does not accept client ID metadata documents either)"
            if settings.client_metadata_url
            else ""
        )
        raise RegistrationError(
            f"the authorization server {issuer} offers no dynamic client registration{hint}; "
            "register a client there and pass client_id= (and client_secret=)"
        )
    rules.check(endpoint, what="the registration endpoint")
    attempts = [scope or None]
    if narrow_scope is not None:
        attempts += [narrow_scope or None, None]
    attempts = list(dict.fromkeys(attempts))
    for index, asked in enumerate(attempts):
        document = _document(
            settings, redirect_uri=redirect_uri, scope=asked, grant_types=grant_types
        )
        response: HttpResponse = yield HttpRequest.post_json(
            endpoint, document, what="client registration", error=RegistrationError
        )
        if index == len(attempts) - 1 or not (
            response.status_code == 400 and read_error(response).error in SCOPE_REFUSALS
        ):
            break
        logger.info(
            "%s refused to register a client for the scope %r%s; trying %r",
            issuer,
            asked,
            read_error(response).detail,
            attempts[index + 1],
        )
    if response.status_code == 404 and assumed_because is not None:
        raise DiscoveryError(
            f"{assumed_because}, but the default registration endpoint {endpoint} answered "
            "HTTP 404 too: there is no OAuth authorization server there; check the URL"
        )
    if response.status_code not in (200, 201):
        answer = read_error(response)
        raise answer.as_error(
            RegistrationError,
            f"the authorization server {issuer} refused to register this client "
            f"(HTTP {response.status_code}{answer.detail})",
        )
    return _registration(response, endpoint, document, issuer=issuer)


def update_registration(
    settings: ClientSettings,
    stored: ClientRegistration,
    *,
    scope: str,
    rules: UrlRules,
    redirect_uri: str | None = None,
) -> Generator[Effect, Any, ClientRegistration | None]:
    """RFC 7592: widen a dynamic client's registered ``scope``, or move it to another
    ``redirect_uri`` (a port the user fixed), keeping its client_id.

    A new client_id would end sessions that an MCP server binds to the client (the mcp SDK's
    do). ``None`` where the server offers no registration management or refuses the update:
    the caller registers a new client then.
    """
    uri, token = stored.registration_client_uri, stored.registration_access_token
    if not uri or not token:
        return None
    try:
        rules.check(uri, what="the registration_client_uri")
    except MCPAuthError:
        return None
    document = _document(
        settings,
        redirect_uri=redirect_uri or stored.redirect_uri,
        scope=scope,
        grant_types=list(stored.grant_types) or None,
    )
    document["client_id"] = stored.client_id
    if stored.client_secret:
        document["client_secret"] = stored.client_secret
    document["token_endpoint_auth_method"] = stored.token_endpoint_auth_method
    try:
        response: HttpResponse = yield HttpRequest(
            "PUT",
            uri,
            "client registration update",
            RegistrationError,
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
            },
            json.dumps(document).encode("utf-8"),
        )
    except RegistrationError as exc:  # not sent or not answered: as if the server refused
        logger.info("the registration update could not be sent (%s); not updating", exc)
        return None
    if response.status_code != 200:
        logger.info(
            "the registration update at %s failed (HTTP %s%s); registering a new client",
            uri,
            response.status_code,
            read_error(response).detail,
        )
        return None
    try:
        updated = _registration(response, uri, document, issuer=stored.issuer or "")
    except RegistrationError as exc:
        logger.info("ignoring the registration update response: %s", exc)
        return None
    if updated.client_id != stored.client_id:
        return None
    return replace(
        updated,
        client_secret=updated.client_secret or stored.client_secret,
        registration_access_token=updated.registration_access_token or token,
        registration_client_uri=updated.registration_client_uri or uri,
    )


def _registration(
    response: HttpResponse, endpoint: str, document: Mapping[str, Any], *, issuer: str
) -> ClientRegistration:
    answer = parse_json(
        response.body, what="registration response", url=endpoint, error=RegistrationError
    )
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        raise RegistrationError(f"the registration response from {endpoint} has no client_id")
    if not is_vschar(client_id):  # RFC 6749 A.1; it goes into forms, headers and log lines
        raise RegistrationError(
            f"the registration response from {endpoint} has a client_id with characters "
            "outside RFC 6749's VSCHAR (control characters or non-ASCII); refusing it"
        )
    secret = answer.get("client_secret")
    if not isinstance(secret, str) or not secret:
        secret = None  # an empty secret is none: nothing to keep, nothing to send
    method = answer.get("token_endpoint_auth_method")
    if not isinstance(method, str):
        method = "client_secret_basic" if secret else "none"
    uris = answer.get("redirect_uris")
    registered_uris = (
        tuple(u for u in uris if isinstance(u, str)) if isinstance(uris, list) else ()
    ) or tuple(document.get("redirect_uris") or ())
    expires = answer.get("client_secret_expires_at")
    expires_at: float | None = None
    if expires is not None:  # seconds since 1970; 0: the secret does not expire (RFC 7591)
        expires_at = (
            server_number(
                expires,
                name="client_secret_expires_at",
                low=0,
                high=MAX_SECRET_EXPIRY,
                cap=True,
                what=f"the registration response from {endpoint}",
                error=RegistrationError,
            )
            or None
        )
    # sent as ``Authorization: Bearer`` (RFC 7592): a token no header can carry is dropped,
    # and the registration then cannot be updated, only made anew
    rat = header_safe_or_none(answer.get("registration_access_token"))
    rcu = answer.get("registration_client_uri")
    registered_scope = answer.get("scope")
    if not isinstance(registered_scope, str):
        registered_scope = document.get("scope")  # what was asked for, unless the server says
    grants = answer.get("grant_types")
    if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
        grants = document.get("grant_types") or []
    return ClientRegistration(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        redirect_uris=registered_uris,
        issuer=issuer,
        kind="dynamic",
        client_secret_expires_at=expires_at,
        registration_access_token=rat,
        scope=registered_scope or None,
        registration_client_uri=rcu if isinstance(rcu, str) else None,
        grant_types=tuple(grants),
    )


def client_auth(client: ClientRegistration) -> tuple[dict[str, str], dict[str, str]]:
    """Form fields and headers that authenticate ``client`` at the token endpoint (nothing
    for a client without a client_id: no empty ``client_id=`` is sent)."""
    method = client.token_endpoint_auth_method
    if not client.client_id:
        return {}, {}
    if client.client_secret and method == "client_secret_basic":
        user = quote(client.client_id, safe="")
        password = quote(client.client_secret, safe="")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {}, {"Authorization": f"Basic {basic}"}
    if client.client_secret and method == "client_secret_post":
        return {"client_id": client.client_id, "client_secret": client.client_secret}, {}
    return {"client_id": client.client_id}, {}
