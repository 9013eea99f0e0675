"""The device authorization grant (RFC 8628): the person logs in on another device.

The flow asks for a device code, shows it (:class:`~mcp_client_auth.effects.ShowDeviceCode`),
then polls the token endpoint, sleeping between polls as the server asks (``slow_down`` adds
five seconds). The login's own timeout bounds the wait whatever the server says; the code's
lifetime may end it sooner. A client registered for a browser login lists only the code grant,
so this grant registers a client of its own where the stored one cannot poll.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..effects import Effect, HttpRequest, HttpResponse, ShowDeviceCode, Sleep
from ..error_answers import read_error
from ..errors import AuthorizationError, TokenError
from ..flow_types import DEVICE_GRANT
from ..registration import choose_client, covers_scope, register_dynamically
from ..scopes import registration_scope, widened
from ..server_json import parse_json, server_number
from ..server_text import clean_text
from ..tokens import ClientRegistration, ServerRecord, TokenSet
from ..url_rules import require_secure_url

if TYPE_CHECKING:
    from .base import FlowContext, GrantRequest, StartOver

__all__ = ["DeviceCode", "obtain", "read_device_code", "serves_device_grant"]

logger = logging.getLogger("mcp_client_auth.flow")

MAX_POLL_INTERVAL = 60.0  # a server's interval (and slow_down) is capped at this
MIN_POLL_INTERVAL = 1.0  # ... and raised to this: a server's 0 or 1e-300 is no reason to spin
DEFAULT_POLL_INTERVAL = 5.0  # RFC 8628 3.2: without an interval, 5 s
MAX_CODE_LIFETIME = 24 * 3600.0  # a device code's expires_in is capped at this
LAST_POLL_GRACE = 5.0  # a poll sent as the login's time runs out may take this long to answer


@dataclass(frozen=True)
class DeviceCode:
    """A device authorization response (RFC 8628 3.2), every field checked."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float | None  # None: not said (or 0), so only the login's timeout applies
    interval: float


def read_device_code(response: HttpResponse) -> DeviceCode:
    """Read a device authorization response: strings where strings belong, the verification
    pages usable URLs, the numbers finite and in range (an interval between
    :data:`MIN_POLL_INTERVAL` and :data:`MAX_POLL_INTERVAL`, a lifetime of at most a day)."""
    what = "the device authorization response"
    answer = parse_json(
        response.body,
        what="device authorization response",
        url=response.url,
        error=AuthorizationError,
    )
    if not all(
        isinstance(answer.get(k), str) and answer[k]
        for k in ("device_code", "user_code", "verification_uri")
    ):
        raise AuthorizationError(f"{what} is incomplete")
    complete = answer.get("verification_uri_complete")
    complete = complete if isinstance(complete, str) and complete else None
    for uri in (answer["verification_uri"], complete):
        if uri is not None:
            require_secure_url(uri, what=f"the verification page in {what}")

    def seconds(name: str, high: float, default: float) -> float:
        value = answer.get(name)
        if value is None:
            return default
        return server_number(
            value, name=name, low=0, high=high, cap=True, what=what, error=AuthorizationError
        )

    expires_in = seconds("expires_in", MAX_CODE_LIFETIME, 0.0) or None  # 0: not said
    interval = seconds("interval", MAX_POLL_INTERVAL, DEFAULT_POLL_INTERVAL)
    return DeviceCode(
        answer["device_code"],
        clean_text(answer["user_code"], 64),  # only ever shown: whatever shows it gets it clean
        answer["verification_uri"],
        complete,
        expires_in,
        max(interval, MIN_POLL_INTERVAL),
    )


def serves_device_grant(client: ClientRegistration, issuer: str | None) -> bool:
    """Whether a stored client can poll for a device code at ``issuer``.

    A client registered for a browser login lists only the code grant: an authorization server
    refuses it the device grant, so the device flow registers a client of its own. A client the
    user gave (pre-registered, metadata document) is trusted to carry the grant. Its registered
    scope does not decide: a step-up asks with it first, as the browser login does.
    """
    if client.issuer != issuer:
        return False
    return client.kind != "dynamic" or DEVICE_GRANT in client.grant_types


def _register_client(
    flow: FlowContext, record: ServerRecord, scope: str
) -> Generator[Effect, Any, ClientRegistration]:
    """A client of its own for the device grant, registered as a browser login's is: for
    ``scope`` and what the resource and the server advertise."""
    return (
        yield from register_dynamically(
            flow.settings.client.replace(application_type="native"),
            issuer=record.issuer or "",
            server_metadata=record.server_metadata or {},
            redirect_uri=None,
            scope=registration_scope(scope, record.resource_metadata, record.server_metadata),
            rules=flow.settings.urls,
            grant_types=[DEVICE_GRANT, "refresh_token"],
            narrow_scope=scope,
        )
    )


def _device_authorization(
    flow: FlowContext,
    endpoint: str,
    record: ServerRecord,
    client: ClientRegistration,
    scope: str,
    timeout: float,
) -> Generator[Effect, Any, HttpResponse]:
    """The device authorization request (RFC 8628 3.1), within ``timeout`` seconds."""
    auth_form, headers = flow.token_endpoint.authenticate(client, record)
    form = {"resource": record.resource_indicator, **auth_form}
    if scope:
        form["scope"] = scope
    response: HttpResponse = yield HttpRequest.post_form(
        endpoint,
        form,
        what="device authorization",
        error=AuthorizationError,
        headers=headers,
        timeout=timeout,
    )
    return response


def _code_for(
    flow: FlowContext, record: ServerRecord, scope: str
) -> Generator[Effect, Any, tuple[ServerRecord, ClientRegistration, DeviceCode, float]]:
    """A device code for ``scope``: the record and client that asked for it, and when."""
    metadata = record.server_metadata or {}
    endpoint = metadata.get("device_authorization_endpoint")
    if not endpoint:
        raise AuthorizationError(
            f"the authorization server {record.issuer} does not offer the device flow; "
            "use the browser or paste-back login"
        )
    urls = flow.settings.urls
    urls.check(endpoint, what="the device authorization endpoint")
    client = record.client
    if client is None or not serves_device_grant(client, record.issuer):
        client = choose_client(
            flow.settings.client,
            None,
            issuer=record.issuer or "",
            server_metadata=metadata,
            redirect_uri="",
        )
    # asking with a client registered for fewer scopes (a step-up): it keeps the client_id
    # where the server allows it; a refusal (invalid_scope) registers anew, below
    beyond_registration = client is not None and not covers_scope(client, scope)
    if client is None:
        client = yield from _register_client(flow, record, scope)
        record = replace(record, client=client)
        yield from flow.save(record)
    start = flow.clock()
    timeout = flow.settings.login_timeout
    response = yield from _device_authorization(flow, endpoint, record, client, scope, timeout)
    if (
        beyond_registration
        and response.status_code == 400
        and read_error(response).error == "invalid_scope"
    ):
        logger.info("%s refused this client the scope %r; registering anew", endpoint, scope)
        client = yield from _register_client(flow, record, widened(client, scope))
        record = replace(record, client=client)
        yield from flow.save(record)
        remaining = max(0.0, timeout - (flow.clock() - start))
        response = yield from _device_authorization(
            flow, endpoint, record, client, scope, remaining
        )
    if response.status_code != 200:
        answer = read_error(response)
        raise answer.as_error(
            AuthorizationError,
            f"the device authorization request failed with HTTP {response.status_code}"
            f"{answer.detail}",
        )
    code = read_device_code(response)
    pages = {
        "verification_uri": code.verification_uri,
        "verification_uri_complete": code.verification_uri_complete,
    }
    for name, uri in pages.items():
        if uri is not None:  # shown, and opened with open_browser=True
            urls.check(uri, what=f"the {name} of the device login")
    return record, client, code, start


def obtain(
    flow: FlowContext, request: GrantRequest
) -> Generator[Effect, Any, TokenSet | StartOver]:
    scope = request.scope
    record, client, code, start = yield from _code_for(flow, request.record, scope)
    yield ShowDeviceCode(
        code.verification_uri, code.user_code, code.verification_uri_complete, code.expires_in
    )
    # each poll may take only what is left of the login's time (and a few seconds more for
    # the last); the code's lifetime may end the wait sooner (the message then says so)
    timeout = flow.settings.login_timeout
    lifetime = code.expires_in
    timed_out = lifetime is None or timeout < lifetime
    deadline = start + (timeout if lifetime is None or timed_out else lifetime)
    interval = code.interval
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": code.device_code,
        "resource": record.resource_indicator,
    }

    def left() -> float:
        return max(0.0, deadline - flow.clock())

    def over() -> AuthorizationError:
        if timed_out:
            return AuthorizationError(
                f"no approval within {timeout:g} s; the login did not finish in its time "
                "(the device code was still valid). Run it again; timeout= allows longer"
            )
        return AuthorizationError("the device code expired before the login was approved")

    while True:
        if not left():
            raise over()
        yield Sleep(min(interval, left()))  # never past the deadline, whatever the interval
        try:
            tokens = yield from flow.token_endpoint.request(
                record,
                client,
                form,
                requested_scope=scope,
                what="device code exchange",
                timeout=lambda: left() + LAST_POLL_GRACE,
            )
        except TokenError as exc:
            if not left():  # the poll took what was left of the login's time
                raise over() from None
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval = min(interval + 5, MAX_POLL_INTERVAL)
                continue
            if exc.error == "expired_token":
                raise AuthorizationError(
                    "the device code expired before the login was approved; try again",
                    error=exc.error,
                ) from None
            if exc.error == "access_denied":
                raise AuthorizationError(
                    "the login was denied on the other device", error=exc.error
                ) from None
            raise
        yield from flow.save(replace(record, tokens=tokens))
        return tokens
