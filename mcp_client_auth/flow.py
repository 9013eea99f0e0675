"""The authorization state machine: from a 401 to a stored token, refresh and step-up.

Sans-IO: every step is a generator that yields :mod:`effects` (send this request, read the
store, show the login) and receives their results. The drivers in ``provider.py`` perform
them with httpx or httpx2, sync or async; the clock is passed in. The provider calls
:meth:`AuthFlow.obtain` with its refresh lock held, so one process refreshes at a time.

This module decides what to do (use the stored token, refresh, rediscover, log in) and keeps
the state; the grants (``grants/``), the token endpoint (``token_endpoint.py``), the scopes,
the DPoP policy and logout each live in a module of their own, imported when first needed: a
reconnect with a valid token needs none of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .effects import Effect, LoadRecord, SaveRecord
from .errors import DiscoveryError, LoginRequiredError
from .flow_types import (
    CLIENT_CREDENTIALS_GRANT,
    DEVICE_GRANT,
    JWT_BEARER_GRANT,
    FlowSettings,
)
from .tokens import ServerRecord, TokenSet
from .urls import origin

if TYPE_CHECKING:
    from .challenges import Challenge
    from .discovery import Discovered
    from .grants.base import Grant, GrantRequest, StartOver
    from .logout import LogoutResult
    from .token_endpoint import TokenEndpoint

__all__ = [
    "CLIENT_CREDENTIALS_GRANT",
    "DEVICE_GRANT",
    "JWT_BEARER_GRANT",
    "AuthFlow",
    "FlowSettings",
]

logger = logging.getLogger("mcp_client_auth.flow")

RESOURCE_NONCE = "resource"  # who gave a DPoP nonce: the first half of a key of AuthFlow.nonces


class AuthFlow:
    """The authorization state of one protected resource, and the steps that change it."""

    def __init__(self, settings: FlowSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.record: ServerRecord | None = None
        # DPoP nonces (RFC 9449 8, 9) by who gave them (the authorization server or the
        # resource) and its origin: an authorization server and a resource on one origin keep
        # a nonce each, so alternating between them costs no use_dpop_nonce round trip.
        # Short-lived, so kept in memory only.
        self.nonces: dict[tuple[str, str], str] = {}
        self._resource_nonce_key = (RESOURCE_NONCE, origin(settings.server_url))
        # set by the driver when the resource answered with a DPoP challenge (RFC 9449 7.1)
        self.resource_offers_dpop = False
        self._token_endpoint: TokenEndpoint | None = None

    # -- what the provider reads without any I/O ------------------------------------------

    @property
    def tokens(self) -> TokenSet | None:
        return self.record.tokens if self.record else None

    def valid_tokens(self) -> TokenSet | None:
        """The in-memory tokens when they can be sent now; no I/O, no lock."""
        tokens = self.record.tokens if self.record else None
        if tokens is not None and tokens.is_valid(self.clock(), self.settings.leeway):
            return tokens
        return None

    def resource_nonce(self) -> str | None:
        """The resource's newest DPoP nonce (RFC 9449 9), for the next proof sent there."""
        return self.nonces.get(self._resource_nonce_key)

    def note_resource_nonce(self, nonce: str) -> None:
        """Keep a DPoP nonce the resource gave (never the authorization server's slot)."""
        self.nonces[self._resource_nonce_key] = nonce

    @property
    def token_endpoint(self) -> TokenEndpoint:
        """The token requests of this flow (made on first use: a reconnect sends none)."""
        if self._token_endpoint is None:
            from .token_endpoint import TokenEndpoint

            self._token_endpoint = TokenEndpoint(self.settings, self.clock, self.nonces)
        return self._token_endpoint

    # -- the store -----------------------------------------------------------------------

    def adopt(self, record: ServerRecord | None) -> None:
        """Take ``record``, read from the store by the caller, as this flow's state (what
        :meth:`load` does with the record it asks for); ``None`` changes nothing."""
        if record is not None:
            self.record = record

    def load(self) -> Generator[Effect, Any, ServerRecord | None]:
        """Read the record from the store: another process may have refreshed it."""
        record: ServerRecord | None = yield LoadRecord()
        self.adopt(record)
        return record

    def save(self, record: ServerRecord) -> Generator[Effect, Any, None]:
        """Keep ``record`` as this flow's state, and write it to the store."""
        self.record = record
        yield SaveRecord(record)

    # -- the entry point -----------------------------------------------------------------

    def obtain(
        self,
        *,
        failed: TokenSet | None,
        challenge: Challenge | None,
        allow_refresh: bool = True,
        dpop_refused: bool = False,
    ) -> Generator[Effect, Any, TokenSet | None]:
        """A token to send, called with the refresh lock held.

        ``failed`` is the token the server just refused (or the expired one), ``challenge``
        the server's challenge (``None`` when the token merely expired). ``dpop_refused``: the
        refused token was DPoP-bound and the resource's challenges name only other schemes.
        Returns ``None`` when the request should go out without a token to learn the server's
        challenge.
        """
        insufficient = bool(challenge and challenge.param("error") == "insufficient_scope")
        current = self.valid_tokens()
        if current is not None and current != failed and not insufficient:
            return current  # another task refreshed while this one waited for the lock
        yield from self.load()
        current = self.valid_tokens()
        if current is not None and current != failed and not insufficient:
            return current  # another process refreshed
        found: Discovered | None = None
        if (
            challenge is not None
            and not insufficient
            and failed is not None
            and self.record is not None
            and self.record.server_metadata is not None
        ):
            # The resource refused a token it took before: read its metadata again, since it
            # may name another authorization server now; what the old one issued is dropped.
            found = yield from self._reread(challenge, self.record)
            if found is not None:
                yield from self.save(self._bind_issuer(found, challenge))
        yield from self._settle_dpop(failed, challenge, dpop_refused=dpop_refused)
        stored = self.tokens
        if allow_refresh and not insufficient and stored is not None and stored.refresh_token:
            refreshed = yield from self.refresh()
            if refreshed is not None:
                return refreshed
        if challenge is None and (self.record is None or self.record.server_metadata is None):
            return None
        return (yield from self.authorize(challenge, step_up=insufficient, found=found))

    def _settle_dpop(
        self, failed: TokenSet | None, challenge: Challenge | None, *, dpop_refused: bool
    ) -> Generator[Effect, Any, None]:
        """Drop the DPoP key of a resource that refused a DPoP-bound token and does not take
        DPoP (RFC 9449 7.1: such a resource says so in its challenge), or make one for a
        resource whose challenge asks for DPoP: the tokens bound from now on follow it."""
        from .dpop_policy import with_dpop_key

        record = self.record
        if (
            dpop_refused
            and self.settings.dpop is None
            and record is not None
            and record.dpop_key is not None
            and failed is not None
            and failed.dpop_bound
            and not self.resource_offers_dpop
        ):
            logger.info(
                "%s does not take DPoP-bound tokens; a new login gets bearer tokens",
                record.resource,
            )
            yield from self.save(replace(record, tokens=None, dpop_key=None))
        elif record is not None and challenge is not None:
            with_key = with_dpop_key(
                self.settings.dpop, record, challenge, resource_offers=self.resource_offers_dpop
            )
            if with_key is not record:
                yield from self.save(with_key)

    def refresh(self) -> Generator[Effect, Any, TokenSet | None]:
        """Refresh the stored tokens; ``None`` when the server refused the refresh token."""
        from .grants.refresh import refresh

        return (yield from refresh(self))

    def authorize(
        self, challenge: Challenge | None, *, step_up: bool = False, found: Discovered | None = None
    ) -> Generator[Effect, Any, TokenSet]:
        """A new grant: discovery, then the configured grant (a login, or a machine grant);
        the tokens are stored. ``found`` is discovery just done for this same challenge (it
        is not repeated). A login the server sends back to the start runs once more."""
        may_start_over = True
        while True:
            result = yield from self._authorize_once(challenge, step_up, found, may_start_over)
            if isinstance(result, TokenSet):
                return result
            found, may_start_over = result.found, False

    def _authorize_once(
        self,
        challenge: Challenge | None,
        step_up: bool,
        found: Discovered | None,
        may_start_over: bool,
    ) -> Generator[Effect, Any, TokenSet | StartOver]:
        from .grants.base import GrantRequest
        from .scopes import login_scope

        settings = self.settings
        if settings.machine is None and not settings.interactive:
            hint = (
                settings.login_hint()
                if settings.login_hint is not None
                else f"run `mcp-client-auth login {settings.server_url}`"
            )
            raise LoginRequiredError(f"{settings.server_url} needs a login; {hint}")
        if found is None:
            found = yield from self._discover(challenge)
        record = self._bind_issuer(found, challenge)
        metadata = found.server_metadata
        if settings.machine is None:
            methods = metadata.get("code_challenge_methods_supported")
            if not methods or "S256" not in methods:
                raise DiscoveryError(
                    f"the authorization server {found.issuer} does not advertise PKCE S256 "
                    "(code_challenge_methods_supported); refusing to authorize without it"
                )
        previous = self.record.tokens if self.record else None
        scope = login_scope(settings, challenge, found, step_up=step_up, previous=previous)
        request = GrantRequest(record, found, scope, may_start_over)
        if settings.machine is None:
            yield from self.save(record)
        grant = self._grant(request)
        return (yield from grant(self, request))

    def _grant(self, request: GrantRequest) -> Grant:
        """The grant this flow runs: the machine grant configured, else the device grant
        (asked for, or better here since no browser opens) or the authorization code."""
        settings = self.settings
        if settings.machine is not None:
            from .grants import assertion

            return assertion.obtain
        offered = request.found.server_metadata.get("device_authorization_endpoint")
        if settings.device or (settings.prefer_device() and offered):
            from .grants import device

            return device.obtain
        from .grants import authorization_code

        return authorization_code.obtain

    # -- discovery -----------------------------------------------------------------------

    def _reread(
        self, challenge: Challenge, record: ServerRecord
    ) -> Generator[Effect, Any, Discovered | None]:
        """Discovery for a resource that refused its token: a :class:`Discovered` when it now
        names another authorization server, else ``None`` (the stored metadata stands).

        Only a valid protected resource metadata document that names a new issuer moves the
        client; a missing, broken or unreachable one does not (refreshing at the server that
        issued the token is still safe, and a login runs discovery again and reports it).
        """
        from .discovery import (
            Discovered,
            choose_authorization_server,
            discover_resource_metadata,
            discover_server_metadata,
        )

        header_url = challenge.param("resource_metadata")
        try:
            resource_metadata = yield from discover_resource_metadata(
                self.settings.server_url, header_url, rules=self.settings.urls
            )
            servers = (resource_metadata or {}).get("authorization_servers") or []
            if resource_metadata is None or not servers:
                return None
            expected, why = self._expected_issuer()
            issuer = choose_authorization_server(
                servers, expected, self.settings.server_url, why=why
            )
            if issuer == record.issuer:
                return None
            logger.info("%s now names the authorization server %s", record.resource, issuer)
            server_metadata = yield from discover_server_metadata(issuer, rules=self.settings.urls)
        except DiscoveryError as exc:
            logger.warning("could not re-read the metadata of %s: %s", record.resource, exc)
            return None
        return Discovered(resource_metadata["resource"], issuer, server_metadata, resource_metadata)

    def _discover(self, challenge: Challenge | None) -> Generator[Effect, Any, Discovered]:
        from .discovery import discover

        header_url = challenge.param("resource_metadata") if challenge else None
        expected, why = self._expected_issuer()
        return (
            yield from discover(
                self.settings.server_url,
                header_url,
                rules=self.settings.urls,
                expected_issuer=expected,
                why=why,
                challenged=challenge is not None,
            )
        )

    def _expected_issuer(self) -> tuple[str | None, str]:
        """The only authorization server this client may use, and why: ``issuer=``; else, for
        credentials the user gave (:attr:`FlowSettings.own_credentials`), the server they were
        first used with, since they are that server's. ``None``: whichever is listed."""
        if self.settings.issuer is not None:
            return self.settings.issuer, "issuer="
        record = self.record
        if self.settings.own_credentials and record is not None and record.issuer is not None:
            return record.issuer, (
                "the server this client's credentials were first used with; pass issuer= "
                "to move them, or forget the client (logout --forget-client)"
            )
        return None, "issuer="

    def _bind_issuer(self, found: Discovered, challenge: Challenge | None = None) -> ServerRecord:
        """The record updated with fresh metadata; what another issuer gave us is dropped."""
        from .dpop_policy import with_dpop_key

        record = self.record or ServerRecord(resource=self.settings.server_url)
        client = record.client
        tokens = record.tokens
        if record.issuer is not None and record.issuer != found.issuer:
            logger.info(
                "%s moved from %s to %s: dropping what the old server issued",
                record.resource,
                record.issuer,
                found.issuer,
            )
            tokens = None
            client = None
            dpop_key = None  # a new key for a new server: the two cannot link the client
        else:
            dpop_key = record.dpop_key
        if client is not None and client.issuer not in (None, found.issuer):
            client = None
        bound = replace(
            record,
            issuer=found.issuer,
            resource_metadata=found.resource_metadata,
            server_metadata=found.server_metadata,
            client=client,
            tokens=tokens,
            dpop_key=dpop_key,
        )
        return with_dpop_key(
            self.settings.dpop, bound, challenge, resource_offers=self.resource_offers_dpop
        )

    # -- logout (RFC 7009) ---------------------------------------------------------------

    def logout(
        self, *, revoke: bool = True, forget_client: bool = False
    ) -> Generator[Effect, Any, LogoutResult]:
        """Revoke the refresh token, then the access token, where the server can; forget them.

        The tokens are forgotten whatever the server answers, and also when it cannot be
        reached: the user asked to be logged out here first. What failed is in ``errors``.
        """
        from .logout import logout

        record = yield from self.load()
        return (yield from logout(self, record, revoke=revoke, forget_client=forget_client))
