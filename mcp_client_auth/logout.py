"""Logout: revoke the tokens where the server can (RFC 7009), and forget them here.

The tokens are forgotten whatever the server answers, and also when it cannot be reached:
the user asked to be logged out here first. What failed is reported, not raised.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .effects import DeleteRecord, Effect, HttpRequest, HttpResponse
from .error_answers import read_error
from .errors import MCPAuthError, TokenError
from .tokens import ClientRegistration, ServerRecord, TokenSet

if TYPE_CHECKING:
    from .grants.base import FlowContext

__all__ = ["LogoutResult", "logout"]


@dataclass(frozen=True)
class LogoutResult:
    """What a logout did: which tokens the server revoked, and what was forgotten locally."""

    revoked: tuple[str, ...] = ()
    forgotten: bool = False
    revocation_supported: bool = False
    errors: tuple[str, ...] = ()


def wants_a_secret_field(response: HttpResponse, client: ClientRegistration) -> bool:
    """A public client's request refused only for want of a ``client_secret`` field."""
    if (
        response.status_code != 400
        or client.client_secret
        or (client.token_endpoint_auth_method != "none")
    ):
        return False
    answer = read_error(response)
    return answer.error == "invalid_request" and "client_secret" in (answer.description or "")


def logout(
    flow: FlowContext, record: ServerRecord | None, *, revoke: bool, forget_client: bool
) -> Generator[Effect, Any, LogoutResult]:
    """Log out of ``record`` (just read from the store; ``None``: nothing to log out of)."""
    if record is None:
        return LogoutResult()
    metadata = record.server_metadata or {}
    endpoint = metadata.get("revocation_endpoint")
    revoked: list[str] = []
    errors: list[str] = []
    tokens = record.tokens
    try:
        if revoke and endpoint and tokens is not None and record.client is not None:
            revoked, errors = yield from revoke_tokens(flow, endpoint, tokens, record)
    except Exception:
        # not even an unforeseen error keeps the tokens (whatever the server sent). Not
        # ``finally``: a generator closed while it waits for an answer must not yield again.
        yield from forget(flow, record, forget_client=forget_client)
        raise
    yield from forget(flow, record, forget_client=forget_client)
    return LogoutResult(tuple(revoked), True, bool(endpoint), tuple(errors))


def forget(
    flow: FlowContext, record: ServerRecord, *, forget_client: bool
) -> Generator[Effect, Any, None]:
    """Drop the tokens from the store, or (``forget_client``) the whole record."""
    if forget_client:
        yield DeleteRecord()
        flow.record = None
    else:
        yield from flow.save(replace(record, tokens=None))


def revoke_tokens(
    flow: FlowContext,
    endpoint: str,
    tokens: TokenSet,
    record: ServerRecord,
) -> Generator[Effect, Any, tuple[list[str], list[str]]]:
    """Ask the server to revoke the refresh token, then the access token: which it revoked,
    and what went wrong (each a line for the user)."""
    client = record.client
    assert client is not None
    revoked: list[str] = []
    errors: list[str] = []
    try:
        flow.settings.urls.check(endpoint, what="the revocation endpoint")
    except MCPAuthError as exc:
        errors.append(str(exc))
        return revoked, errors
    empty_secret: dict[str, str] = {}  # once a server asked for it (below), every time
    candidates = (("refresh_token", tokens.refresh_token), ("access_token", tokens.access_token))
    for hint, value in candidates:
        if not value:
            continue
        auth_form, headers = flow.token_endpoint.authenticate(client, record)
        form = {"token": value, "token_type_hint": hint, **auth_form, **empty_secret}
        try:
            response: HttpResponse = yield HttpRequest.post_form(
                endpoint, form, what="token revocation", error=TokenError, headers=headers
            )
            if "client_secret" not in form and wants_a_secret_field(response, client):
                # A server that requires the client_secret field even of a public client:
                # RFC 6749 2.3.1 lets a client send an empty secret as an empty field. Only
                # after exactly this refusal: a compliant server would take the empty field
                # as a secret the client was not registered with.
                empty_secret = {"client_secret": ""}
                form = {**form, **empty_secret}
                response = yield HttpRequest.post_form(
                    endpoint, form, what="token revocation", error=TokenError, headers=headers
                )
        except TokenError as exc:  # unreachable: the tokens are forgotten all the same
            errors.append(f"{hint}: {exc}")
            break
        if response.status_code == 200:
            revoked.append(hint)
        else:
            answer = read_error(response)
            error, description = answer.error, answer.description
            errors.append(
                f"{hint}: HTTP {response.status_code}"
                + (f" ({error})" if error else "")
                + (f": {description}" if description else "")
            )
    return revoked, errors
