"""What every grant gets from the flow, and what it answers.

A grant is a generator function ``(flow, request) -> TokenSet | StartOver``: it yields
effects, stores what it obtains through ``flow.save``, and returns the new tokens. Only the
authorization code grant ever answers :class:`StartOver`, when the server forgot its client or
refused it a wider scope and the login must begin again with a new registration.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..discovery import Discovered
    from ..effects import Effect
    from ..flow_types import FlowSettings
    from ..token_endpoint import TokenEndpoint
    from ..tokens import ServerRecord, TokenSet

__all__ = ["FlowContext", "Grant", "GrantRequest", "StartOver"]


class FlowContext(Protocol):
    """The part of :class:`~mcp_client_auth.flow.AuthFlow` a grant uses."""

    settings: FlowSettings
    clock: Callable[[], float]
    record: ServerRecord | None
    resource_offers_dpop: bool

    @property
    def token_endpoint(self) -> TokenEndpoint: ...

    def save(self, record: ServerRecord) -> Generator[Effect, Any, None]: ...


@dataclass(frozen=True)
class GrantRequest:
    """One run of a grant: the record bound to the authorization server ``found``, and the
    scope to ask for. ``may_start_over``: false on the second attempt of a login, so a
    server that keeps refusing ends it with its error."""

    record: ServerRecord
    found: Discovered
    scope: str
    may_start_over: bool = True


@dataclass(frozen=True)
class StartOver:
    """Begin the authorization again, with the discovery ``found`` (``None``: discover anew)."""

    found: Discovered | None


class Grant(Protocol):
    def __call__(
        self, flow: FlowContext, request: GrantRequest
    ) -> Generator[Effect, Any, TokenSet | StartOver]: ...
