"""The refresh grant: a new access token for the stored refresh token.

A refusal of the refresh token (``invalid_grant``) forgets the tokens, and one of a
dynamically registered client (``invalid_client``) forgets the client too: the caller then
logs in again. Any other failure keeps what is stored, to try again later.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..dpop_policy import with_dpop_key
from ..effects import Effect
from ..errors import TokenError
from ..tokens import TokenSet

if TYPE_CHECKING:
    from .base import FlowContext

__all__ = ["refresh"]

logger = logging.getLogger("mcp_client_auth.flow")


def refresh(flow: FlowContext) -> Generator[Effect, Any, TokenSet | None]:
    """Refresh the stored tokens; ``None`` when there is nothing to refresh with (no refresh
    token, no metadata, a client of another issuer) or the server refused it."""
    record = flow.record
    old = record.tokens if record is not None else None
    if record is None or old is None or not old.refresh_token:
        return None
    metadata, client = record.server_metadata, record.client
    if not metadata or client is None or client.issuer not in (None, record.issuer):
        return None
    record = with_dpop_key(flow.settings.dpop, record, resource_offers=flow.resource_offers_dpop)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
        "resource": record.resource_indicator,
    }
    try:
        new = yield from flow.token_endpoint.request(
            record, client, form, requested_scope=old.scope, what="token refresh"
        )
    except TokenError as exc:
        if exc.error == "invalid_grant":
            logger.info(
                "the refresh token for %s was refused; a new login is needed", record.resource
            )
            yield from flow.save(replace(record, tokens=None))
            return None
        if exc.error == "invalid_client" and client.kind == "dynamic":
            logger.info(
                "the client registration for %s was refused; forgetting it", record.resource
            )
            yield from flow.save(replace(record, tokens=None, client=None))
            return None
        raise
    new = new.with_refresh_fallback(old)
    yield from flow.save(replace(record, tokens=new))
    logger.debug("refreshed the access token for %s", record.resource)
    return new
