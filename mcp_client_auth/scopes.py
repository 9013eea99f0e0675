"""Which scopes a login asks for, and which a client registers for.

A login asks for the user's scopes, else the challenge's, else what the resource advertises;
a step-up adds what the resource now asks to what was granted before. A registration asks for
more than the login (everything advertised), so that a later step-up can keep the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .tokens import ClientRegistration

if TYPE_CHECKING:
    from .challenges import Challenge
    from .discovery import Discovered
    from .flow_types import FlowSettings
    from .tokens import TokenSet

__all__ = ["login_scope", "registration_scope", "unique", "widened"]


def unique(items: Sequence[str]) -> tuple[str, ...]:
    """``items`` without empty strings and repeats, in their first order."""
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return tuple(seen)


def widened(client: ClientRegistration, scope: str) -> str:
    """The scope ``client`` was registered for, with ``scope`` added."""
    return " ".join(unique((*(client.scope or "").split(), *scope.split())))


def registration_scope(
    scope: str,
    resource_metadata: Mapping[str, Any] | None,
    server_metadata: Mapping[str, Any] | None,
) -> str:
    """What a new dynamic registration asks for: this login's ``scope`` and every scope the
    resource and its authorization server advertise (``scopes_supported``).

    A registration's scope is a ceiling, not a grant: each login still asks for its own scope.
    Registering for what is advertised lets a later step-up ask for more with the same client,
    where the server holds a client to its registered scope; a new registration would be a new
    client_id, and servers bind MCP sessions to it. A login that asks for no scope registers
    for none: a server may grant a scopeless request all the client registered for.
    """
    if not scope.strip():
        return ""
    advertised: list[str] = []
    for document in (resource_metadata or {}, server_metadata or {}):
        supported = document.get("scopes_supported")
        if isinstance(supported, list):
            advertised += [s for s in supported if isinstance(s, str) and " " not in s]
    return " ".join(unique((*scope.split(), *advertised)))


def login_scope(
    settings: FlowSettings,
    challenge: Challenge | None,
    found: Discovered,
    *,
    step_up: bool,
    previous: TokenSet | None,
) -> str:
    """The scope a login (or a machine grant) asks for.

    The user's scopes win; else the challenge's ``scope``, else the resource's
    ``scopes_supported``. A step-up (``insufficient_scope``) keeps what ``previous`` was
    granted and adds what the challenge asks. ``offline_access`` is added where the
    authorization server offers it and the user did not fix the scopes: it brings the refresh
    token.
    """
    if settings.scopes is not None:
        scopes: tuple[str, ...] = settings.scopes
    else:
        from_challenge = challenge.param("scope") if challenge else None
        if from_challenge:
            scopes = tuple(from_challenge.split())
        elif found.resource_metadata and found.resource_metadata.get("scopes_supported"):
            scopes = tuple(found.resource_metadata["scopes_supported"])
        else:
            scopes = ()
    if step_up:
        if challenge is not None and challenge.param("scope"):
            scopes = (*scopes, *(challenge.param("scope") or "").split())
        if previous is not None and previous.scope:
            scopes = (*previous.scope.split(), *scopes)
    scopes = (*scopes, *settings.extra_scopes)
    supported = found.server_metadata.get("scopes_supported") or ()
    if (
        settings.scopes is None
        and scopes
        and "offline_access" in supported
        and "offline_access" not in scopes
    ):
        scopes = (*scopes, "offline_access")
    return " ".join(unique(scopes))
