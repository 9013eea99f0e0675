"""The authorization state machine: from a 401 to a stored token, refresh and step-up.

Sans-IO: every step is a generator that yields :mod:`effects` (send this request, read the
store, show the login) and receives their results. The drivers in ``provider.py`` perform
them with httpx or httpx2, sync or async; the clock is passed in. The provider calls
:meth:`AuthFlow.obtain` with its refresh lock held, so one process refreshes at a time.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .callback import callback_parameters
from .dpop import DPOP_ALGORITHM, DPoPKey
from .effects import (
    CompleteLogin,
    DeleteRecord,
    Effect,
    GetAssertion,
    HttpRequest,
    HttpResponse,
    LoadRecord,
    SaveRecord,
    ShowDeviceCode,
    Sleep,
    StartLogin,
)
from .errors import (
    AuthorizationError,
    ConfigurationError,
    DiscoveryError,
    LoginRequiredError,
    TokenError,
)
from .metadata import (
    Challenge,
    clean_text,
    origin,
    require_secure_url,
)
from .registration import (
    ClientSettings,
    choose_client,
    client_auth,
    register_dynamically,
    update_registration,
)
from .tokens import (
    ClientRegistration,
    ServerRecord,
    TokenSet,
    number,
    token_set_from_response,
)

if TYPE_CHECKING:
    from .discovery import Discovered
    from .token_exchange import IdJagExchange

# Discovery, PKCE and the token exchange are imported where a login or a re-discovery runs
# them: a reconnect or a refresh needs none of them.

__all__ = ["AuthFlow", "FlowSettings", "LogoutResult"]

logger = logging.getLogger("mcp_client_auth.flow")

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_POLL_INTERVAL = 60.0  # device flow: a server's interval (and slow_down) is capped at this
# form fields whose values must never come back in a message, even when a server echoes them
SECRET_FIELDS = (
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "assertion",
    "client_assertion",
    "device_code",
    "token",
    "subject_token",
)
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# who gave a DPoP nonce: the first half of a key of AuthFlow.nonces
AUTHORIZATION_SERVER = "authorization server"
RESOURCE = "resource"


@dataclass(frozen=True)
class FlowSettings:
    """The provider's configuration, as the flow needs it."""

    server_url: str  # canonical URL of the protected resource
    client: ClientSettings
    scopes: tuple[str, ...] | None = None  # the user's scopes: never replaced
    redirect_uri: str | None = None
    # the loopback port the user fixed (redirect_port=, BrowserLogin(port=)): it wins over a
    # stored registration's redirect URI, whose client is updated or registered again for it
    fixed_port: int | None = None
    leeway: float = 60.0
    login_timeout: float = 300.0
    interactive: bool = True  # False: raise LoginRequiredError instead of a login
    device: bool = False  # the login is the device authorization grant
    # asked at login time: True when no browser can be opened, so the device grant is better
    prefer_device: Callable[[], bool] = field(default=lambda: False)
    protocol_version: str | None = None
    grant: str = "authorization_code"  # or "client_credentials" (no person present)
    # private_key_jwt client authentication; never in the repr
    private_key: str | bytes | None = field(default=None, repr=False)
    signing_algorithm: str = "RS256"
    extra_scopes: tuple[str, ...] = field(default_factory=tuple)
    # DPoP (RFC 9449): None = where the authorization server offers it, True = always (a
    # Bearer token is refused), False = never
    dpop: bool | None = None
    token_exchange: IdJagExchange | None = None  # the jwt-bearer assertion is an ID-JAG
    # the authorization server the user expects (its issuer): no other one is ever contacted
    issuer: str | None = None
    # what LoginRequiredError tells the user to do (the command that logs in to the same store)
    login_hint: Callable[[], str] | None = None


@dataclass(frozen=True)
class LogoutResult:
    """What a logout did: which tokens the server revoked, and what was forgotten locally."""

    revoked: tuple[str, ...] = ()
    forgotten: bool = False
    revocation_supported: bool = False
    errors: tuple[str, ...] = ()


def _error_fields(
    response: HttpResponse, secrets: Sequence[str] = ()
) -> tuple[str | None, str | None]:
    """The server's ``error`` and ``error_description``, cleaned of control characters and of
    any secret the request carried (``secrets``), and bounded in length."""
    try:
        answer = json.loads(response.body[:65536])
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(answer, dict):
        return None, None
    error = answer.get("error")
    description = answer.get("error_description")
    return (
        (clean_text(error, 100, secrets=secrets) or None) if isinstance(error, str) else None,
        (clean_text(description, 300, secrets=secrets) or None)
        if isinstance(description, str)
        else None,
    )


def _secrets(form: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(form[name] for name in SECRET_FIELDS if form.get(name))


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return tuple(seen)


def _serves_device_grant(client: ClientRegistration, issuer: str | None, scope: str) -> bool:
    """Whether a stored client can poll for a device code at ``issuer``, for ``scope``.

    A client registered for a browser login lists only the code grant: an authorization server
    refuses it the device grant (``device_code is not allowed for this client``), so the device
    flow registers a client of its own. A client the user gave (pre-registered, metadata
    document) is trusted to carry the grant.
    """
    if client.issuer != issuer:
        return False
    if client.kind != "dynamic":
        return True
    covered = client.scope is None or not scope or set(scope.split()) <= set(client.scope.split())
    return DEVICE_GRANT in client.grant_types and covered


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


class AuthFlow:
    """The authorization state of one protected resource, and the steps that change it."""

    def __init__(self, settings: FlowSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.record: ServerRecord | None = None
        # DPoP nonces (RFC 9449 8, 9) by who gave them (AUTHORIZATION_SERVER or RESOURCE) and
        # its origin: an authorization server and a resource on one origin keep a nonce each,
        # so alternating between them costs no use_dpop_nonce round trip. Short-lived, so
        # kept in memory only.
        self.nonces: dict[tuple[str, str], str] = {}
        self._resource_nonce_key = (RESOURCE, origin(settings.server_url))
        # set by the driver when the resource answered with a DPoP challenge (RFC 9449 7.1)
        self.resource_offers_dpop = False

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

    # -- the store -----------------------------------------------------------------------

    def load(self) -> Generator[Effect, Any, ServerRecord | None]:
        """Read the record from the store: another process may have refreshed it."""
        record: ServerRecord | None = yield LoadRecord()
        if record is not None:
            self.record = record
        return record

    def _save(self, record: ServerRecord) -> Generator[Effect, Any, None]:
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
                yield from self._save(self._bind_issuer(found, challenge))
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
            # RFC 9449 7.1: a resource that takes DPoP says so in its challenge. This one
            # does not: forget the key and the tokens bound to it; a login gets bearer tokens.
            logger.info(
                "%s does not take DPoP-bound tokens; a new login gets bearer tokens",
                record.resource,
            )
            yield from self._save(replace(record, tokens=None, dpop_key=None))
        elif record is not None and challenge is not None:
            with_key = self._with_dpop_key(record, challenge)
            if with_key is not record:  # the resource asks for DPoP: bind from now on
                yield from self._save(with_key)
        stored = self.tokens
        if allow_refresh and not insufficient and stored is not None and stored.refresh_token:
            refreshed = yield from self.refresh()
            if refreshed is not None:
                return refreshed
        if challenge is None and (self.record is None or self.record.server_metadata is None):
            return None
        return (yield from self.authorize(challenge, step_up=insufficient, found=found))

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
                self.settings.server_url, header_url
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
            server_metadata = yield from discover_server_metadata(issuer)
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
                expected_issuer=expected,
                why=why,
                challenged=challenge is not None,
            )
        )

    def _expected_issuer(self) -> tuple[str | None, str]:
        """The only authorization server this client may use, and why: ``issuer=``; else, for
        credentials the user gave (a pre-registered secret or private key), the server they
        were first used with, since they are that server's. ``None``: whichever is listed."""
        if self.settings.issuer is not None:
            return self.settings.issuer, "issuer="
        record = self.record
        own_credentials = self.settings.client.client_secret or self.settings.private_key
        if own_credentials and record is not None and record.issuer is not None:
            return record.issuer, (
                "the server this client's credentials were first used with; pass issuer= "
                "to move them, or forget the client (logout --forget-client)"
            )
        return None, "issuer="

    # -- refresh -------------------------------------------------------------------------

    def refresh(self) -> Generator[Effect, Any, TokenSet | None]:
        """Refresh the stored tokens; ``None`` when the server refused the refresh token."""
        record = self.record
        old = record.tokens if record is not None else None
        if record is None or old is None or not old.refresh_token:
            return None
        refresh_token = old.refresh_token
        metadata, client = record.server_metadata, record.client
        if not metadata or client is None or client.issuer not in (None, record.issuer):
            return None
        record = self._with_dpop_key(record)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "resource": record.resource_indicator,
        }
        try:
            new = yield from self._token_request(
                record, client, form, requested_scope=old.scope, what="token refresh"
            )
        except TokenError as exc:
            if exc.error == "invalid_grant":
                logger.info(
                    "the refresh token for %s was refused; a new login is needed", record.resource
                )
                yield from self._save(replace(record, tokens=None))
                return None
            if exc.error == "invalid_client" and client.kind == "dynamic":
                logger.info(
                    "the client registration for %s was refused; forgetting it", record.resource
                )
                yield from self._save(replace(record, tokens=None, client=None))
                return None
            raise
        new = new.with_refresh_fallback(old)
        yield from self._save(replace(record, tokens=new))
        logger.debug("refreshed the access token for %s", record.resource)
        return new

    # -- the interactive authorization ---------------------------------------------------

    def authorize(
        self,
        challenge: Challenge | None,
        *,
        step_up: bool = False,
        _retry: bool = True,
        found: Discovered | None = None,
    ) -> Generator[Effect, Any, TokenSet]:
        """Discovery, registration, login and code exchange; the tokens are stored.

        ``found`` is discovery just done for this same challenge (it is not repeated).
        """
        settings = self.settings
        if settings.grant in ("client_credentials", JWT_BEARER_GRANT):
            return (yield from self._client_credentials(challenge, step_up=step_up, found=found))
        if not settings.interactive:
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
        methods = metadata.get("code_challenge_methods_supported")
        if not methods or "S256" not in methods:
            raise DiscoveryError(
                f"the authorization server {found.issuer} does not advertise PKCE S256 "
                "(code_challenge_methods_supported); refusing to authorize without it"
            )
        scope = self._scope(challenge, found, step_up=step_up)
        yield from self._save(record)
        if settings.device or (
            settings.prefer_device() and metadata.get("device_authorization_endpoint")
        ):
            return (yield from self._device_grant(record, scope))

        stored_client = record.client
        preferred = settings.redirect_uri
        if preferred is None and stored_client is not None and stored_client.issuer == found.issuer:
            preferred = _unless_another_port(stored_client.redirect_uri, settings.fixed_port)
        session = yield StartLogin(preferred)
        redirect_uri = session.redirect_uri
        client = choose_client(
            settings.client,
            stored_client,
            issuer=found.issuer,
            server_metadata=metadata,
            redirect_uri=redirect_uri,
            scope=scope,
        )
        registration_scope = scope
        if (
            client is None
            and stored_client is not None
            and stored_client.kind == "dynamic"
            and stored_client.issuer == found.issuer
        ):
            # registered for fewer scopes than this login asks, or for another redirect URI
            # (a port the user fixed): update the registration (RFC 7592: the same client_id,
            # so the MCP session survives), else register anew
            if stored_client.scope:
                registration_scope = " ".join(
                    _unique((*stored_client.scope.split(), *scope.split()))
                )
            client = yield from update_registration(
                settings.client, stored_client, scope=registration_scope, redirect_uri=redirect_uri
            )
            if redirect_uri not in stored_client.redirect_uris:
                logger.info(
                    "the client for %s was registered for %s; this login uses %s: %s",
                    record.resource,
                    stored_client.redirect_uri,
                    redirect_uri,
                    "registration updated (same client id)" if client else "registering anew",
                )
        if client is None:
            client = yield from register_dynamically(
                settings.client,
                issuer=found.issuer,
                server_metadata=metadata,
                redirect_uri=redirect_uri,
                scope=registration_scope,
                protocol_version=settings.protocol_version,
                assumed_because=found.assumed_because,
            )
        record = replace(record, client=client)
        yield from self._save(record)

        from .pkce import PKCE, new_state

        pkce = PKCE.generate()
        state = new_state()
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
        dpop_key = self._dpop_key(record)
        if dpop_key is not None:
            params["dpop_jkt"] = dpop_key.thumbprint  # binds the code (RFC 9449 10)
        endpoint = require_secure_url(
            metadata["authorization_endpoint"], what="the authorization endpoint"
        )
        check = functools.partial(
            self._check_callback, state=state, issuer=found.issuer, metadata=metadata
        )
        session.device_flow_offered = bool(metadata.get("device_authorization_endpoint"))
        callback = yield CompleteLogin(
            session, _with_query(endpoint, params), state, settings.login_timeout, check
        )
        if session.wants_device_flow:  # no browser opened and no terminal: the device grant
            logger.info("no browser could be opened for %s; using the device flow", record.issuer)
            return (yield from self._device_grant(record, scope))
        code = check(callback)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.verifier,
            "resource": record.resource_indicator,
        }
        try:
            tokens = yield from self._token_request(
                record, client, form, requested_scope=scope, what="authorization code exchange"
            )
        except TokenError as exc:
            if exc.error == "invalid_client" and client.kind == "dynamic" and _retry:
                logger.info("the authorization server forgot this client; registering again")
                yield from self._save(replace(record, client=None, tokens=None))
                return (yield from self.authorize(challenge, step_up=step_up, _retry=False))
            raise
        yield from self._save(replace(record, tokens=tokens))
        return tokens

    def _bind_issuer(self, found: Discovered, challenge: Challenge | None = None) -> ServerRecord:
        """The record updated with fresh metadata; what another issuer gave us is dropped."""
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
        return self._with_dpop_key(
            replace(
                record,
                issuer=found.issuer,
                resource_metadata=found.resource_metadata,
                server_metadata=found.server_metadata,
                client=client,
                tokens=tokens,
                dpop_key=dpop_key,
            ),
            challenge,
        )

    # -- DPoP (RFC 9449) ------------------------------------------------------------------

    def _wants_dpop(self, record: ServerRecord, challenge: Challenge | None) -> bool:
        """Whether to bind ``record``'s tokens to a DPoP key (decided when it gets one).

        ``dpop=True``: always; ``False``: never. ``None``: where the authorization server
        offers ES256 (``dpop_signing_alg_values_supported``) and the resource takes DPoP: its
        challenge uses the ``DPoP`` scheme, or its metadata lists ES256 in
        ``dpop_signing_alg_values_supported`` or sets ``dpop_bound_access_tokens_required``.
        A resource that only ever says ``Bearer`` gets bearer tokens, whatever the server offers.
        """
        setting = self.settings.dpop
        if setting is False:
            return False
        metadata = record.server_metadata or {}
        algorithms = metadata.get("dpop_signing_alg_values_supported")
        if algorithms and DPOP_ALGORITHM not in algorithms:
            if setting:
                raise ConfigurationError(
                    f"dpop=True, but the authorization server {record.issuer} accepts DPoP "
                    f"proofs only as {', '.join(map(str, algorithms))[:200]}, not "
                    f"{DPOP_ALGORITHM}; pass dpop=None to use bearer tokens there"
                )
            logger.info(
                "%s offers DPoP without %s; using bearer tokens", record.issuer, DPOP_ALGORITHM
            )
            return False
        if setting:
            return True
        resource = record.resource_metadata or {}
        if resource.get("dpop_bound_access_tokens_required") is True:
            return True  # even where the server does not say it offers DPoP
        if not algorithms:
            return False
        resource_algorithms = resource.get("dpop_signing_alg_values_supported") or ()
        return (
            self.resource_offers_dpop
            or (challenge is not None and challenge.scheme.lower() == "dpop")
            or DPOP_ALGORITHM in resource_algorithms
        )

    def _with_dpop_key(
        self, record: ServerRecord, challenge: Challenge | None = None
    ) -> ServerRecord:
        """``record`` with a DPoP key pair where it should have one and has none yet.

        The key's presence is the decision, kept in the store: every token request for the
        record carries a proof of it (unless ``dpop=False``).
        """
        if (
            record.dpop_key is None
            and record.server_metadata
            and self._wants_dpop(record, challenge)
        ):
            return replace(record, dpop_key=DPoPKey.generate())
        return record

    def _dpop_key(self, record: ServerRecord) -> DPoPKey | None:
        return record.dpop_key if self.settings.dpop is not False else None

    def _scope(self, challenge: Challenge | None, found: Discovered, *, step_up: bool) -> str:
        settings = self.settings
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
            previous = self.record.tokens if self.record else None
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
        return " ".join(_unique(scopes))

    def _check_callback(
        self, callback: str, *, state: str, issuer: str, metadata: Mapping[str, Any]
    ) -> str:
        try:
            raw = urlsplit(callback).query
        except ValueError:  # e.g. an unbalanced "[" (an IPv6 host without its "]")
            raise AuthorizationError("the login returned an unusable callback URL") from None
        if not raw and "?" not in callback and "=" not in callback:
            raise AuthorizationError("the login returned no authorization response")
        # this login's state first, whatever else the answer holds (an error= included)
        query = callback_parameters(raw, state=state)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        error = one("error")
        if error is not None:
            error = clean_text(error, 100)
            description = clean_text(one("error_description") or "", 300) or None
            detail = f": {description}" if description else ""
            raise AuthorizationError(
                f"the authorization server refused the login ({error}{detail})",
                error=error,
                description=description,
            )
        iss = one("iss")
        if iss is not None and iss != issuer:
            raise AuthorizationError(
                f"the authorization response came from issuer {clean_text(iss, 200)!r}, "
                f"not {issuer!r} (RFC 9207 mix-up protection); refusing it"
            )
        if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
            raise AuthorizationError(
                f"the authorization response has no iss parameter although {issuer} "
                "advertises it (RFC 9207); refusing it"
            )
        code = one("code")
        if not code:
            raise AuthorizationError("the authorization response has no code")
        return code

    # -- the token endpoint --------------------------------------------------------------

    def _token_request(
        self,
        record: ServerRecord,
        client: ClientRegistration,
        form: Mapping[str, str],
        *,
        requested_scope: str | None,
        what: str,
    ) -> Generator[Effect, Any, TokenSet]:
        """One token request; with DPoP, a proof, and one retry when the server asks for a
        nonce (RFC 9449 8)."""
        metadata = record.server_metadata or {}
        endpoint = require_secure_url(metadata["token_endpoint"], what="the token endpoint")
        auth_form, headers = client_auth(client)
        key = self._dpop_key(record)
        where = (AUTHORIZATION_SERVER, origin(endpoint))
        audience = client.issuer or record.issuer or ""
        for attempt in (1, 2):
            if key is not None:
                proof = key.proof("POST", endpoint, nonce=self.nonces.get(where), now=self.clock())
                headers = {**headers, "DPoP": proof}
            sent = {**form, **auth_form, **self._client_assertion(client, audience)}
            response: HttpResponse = yield HttpRequest.post_form(
                endpoint, sent, what=what, error=TokenError, headers=headers
            )
            if key is None:
                break
            nonce = response.headers.get("dpop-nonce")
            if nonce:
                self.nonces[where] = nonce
            if (
                attempt == 1
                and nonce
                and response.status_code in (400, 401)
                and _error_fields(response, _secrets(sent))[0] == "use_dpop_nonce"
            ):
                logger.debug("the token endpoint %s asked for a DPoP nonce; retrying", endpoint)
                continue
            break
        tokens = self._parse_token_response(
            response,
            what=what,
            requested_scope=requested_scope,
            secrets=_secrets(sent),
        )
        if tokens.dpop_bound and key is None:
            raise TokenError(
                f"the {what} at {endpoint} returned a DPoP-bound token although no DPoP proof "
                "was sent; it cannot be used"
            )
        if key is not None and not tokens.dpop_bound and self.settings.dpop:
            raise TokenError(
                f"the {what} at {endpoint} returned a bearer token, but dpop=True requires "
                "DPoP-bound tokens; the authorization server does not support DPoP"
            )
        return tokens

    def _parse_token_response(
        self,
        response: HttpResponse,
        *,
        what: str,
        requested_scope: str | None,
        secrets: Sequence[str] = (),
    ) -> TokenSet:
        if response.status_code != 200:
            error, description = _error_fields(response, secrets)
            retry = (
                " The stored tokens are kept; try again later."
                if (response.status_code >= 500 or error is None)
                else ""
            )
            detail = f": {error}" if error else ""
            detail += f" ({description})" if description else ""
            raise TokenError(
                f"the {what} at {response.url} failed with HTTP {response.status_code}"
                f"{detail}.{retry}",
                error=error,
                description=description,
                status_code=response.status_code,
            )
        if response.truncated:
            raise TokenError(f"the {what} response from {response.url} is too large")
        try:
            answer = json.loads(response.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise TokenError(f"the {what} response from {response.url} is not JSON") from None
        if not isinstance(answer, dict):
            raise TokenError(f"the {what} response from {response.url} is not a JSON object")
        try:
            return token_set_from_response(
                answer, now=self.clock(), requested_scope=requested_scope or None
            )
        except ValueError as exc:
            raise TokenError(f"invalid {what} response from {response.url}: {exc}") from None

    # -- logout (RFC 7009) ---------------------------------------------------------------

    def logout(
        self, *, revoke: bool = True, forget_client: bool = False
    ) -> Generator[Effect, Any, LogoutResult]:
        """Revoke the refresh token, then the access token, where the server can; forget them.

        The tokens are forgotten whatever the server answers, and also when it cannot be
        reached: the user asked to be logged out here first. What failed is in ``errors``.
        """
        record = yield from self.load()
        if record is None:
            return LogoutResult()
        metadata = record.server_metadata or {}
        endpoint = metadata.get("revocation_endpoint")
        revoked: list[str] = []
        errors: list[str] = []
        tokens, client = record.tokens, record.client
        if revoke and endpoint and tokens is not None and client is not None:
            require_secure_url(endpoint, what="the revocation endpoint")
            auth_form, headers = client_auth(client)
            candidates = (
                ("refresh_token", tokens.refresh_token),
                ("access_token", tokens.access_token),
            )
            for hint, value in candidates:
                if not value:
                    continue
                try:
                    response: HttpResponse = yield HttpRequest.post_form(
                        endpoint,
                        {"token": value, "token_type_hint": hint, **auth_form},
                        what="token revocation",
                        error=TokenError,
                        headers=headers,
                    )
                except TokenError as exc:  # unreachable: the tokens are forgotten all the same
                    errors.append(f"{hint}: {exc}")
                    break
                if response.status_code == 200:
                    revoked.append(hint)
                else:
                    error, _ = _error_fields(response, (value, *auth_form.values()))
                    errors.append(
                        f"{hint}: HTTP {response.status_code}" + (f" ({error})" if error else "")
                    )
        if forget_client:
            yield DeleteRecord()
            self.record = None
        else:
            yield from self._save(replace(record, tokens=None))
        return LogoutResult(tuple(revoked), True, bool(endpoint), tuple(errors))

    # -- the client credentials grant (machine to machine) ----------------------------------

    def _client_credentials(
        self, challenge: Challenge | None, *, step_up: bool, found: Discovered | None = None
    ) -> Generator[Effect, Any, TokenSet]:
        settings = self.settings
        if found is None:
            found = yield from self._discover(challenge)
        record = self._bind_issuer(found, challenge)
        scope = self._scope(challenge, found, step_up=step_up)
        client_id = settings.client.client_id or ""
        secret = settings.client.client_secret
        method = (
            "private_key_jwt"
            if settings.private_key is not None
            else ("client_secret_basic" if secret else "none")
        )
        if secret and method == "client_secret_basic":
            supported = found.server_metadata.get("token_endpoint_auth_methods_supported")
            if (
                supported
                and "client_secret_basic" not in supported
                and ("client_secret_post" in supported)
            ):
                method = "client_secret_post"
        client = ClientRegistration(
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method=method,
            issuer=found.issuer,
            kind="pre-registered",
        )
        record = replace(record, client=client)
        form = {"grant_type": settings.grant, "resource": record.resource_indicator}
        if scope:
            form["scope"] = scope
        if settings.grant == JWT_BEARER_GRANT and settings.token_exchange is not None:
            # SEP-990: the ID token traded for an ID-JAG at the enterprise IdP (RFC 8693)
            form["assertion"] = yield from settings.token_exchange.exchange(
                audience=found.issuer, resource=record.resource_indicator, scope=scope or None
            )
        elif settings.grant == JWT_BEARER_GRANT:
            # RFC 7523 2.1: the caller's assertion (an ID-JAG, a workload identity token)
            form["assertion"] = yield GetAssertion(found.issuer, record.resource_indicator)
        tokens = yield from self._token_request(
            record,
            client,
            form,
            requested_scope=scope,
            what="jwt-bearer grant"
            if settings.grant == JWT_BEARER_GRANT
            else "client credentials grant",
        )
        yield from self._save(replace(record, tokens=tokens))
        return tokens

    def _client_assertion(self, client: ClientRegistration, issuer: str) -> dict[str, str]:
        """A fresh client assertion (RFC 7523 2.2) where the user gave a private key.

        Every token request of a ``private_key_jwt`` client authenticates with one, the refresh
        too (without it a server answers ``invalid_client``), and each attempt signs anew: a
        server refuses an assertion whose ``jti`` it has seen, as on a retry with a DPoP nonce.
        """
        if self.settings.private_key is None or client.token_endpoint_auth_method != (
            "private_key_jwt"
        ):
            return {}
        from .jwt import client_assertion

        assertion = client_assertion(
            client.client_id, issuer, self.settings.private_key, self.settings.signing_algorithm
        )
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }

    # -- the device authorization grant (RFC 8628) ---------------------------------------

    def _device_grant(self, record: ServerRecord, scope: str) -> Generator[Effect, Any, TokenSet]:
        metadata = record.server_metadata or {}
        endpoint = metadata.get("device_authorization_endpoint")
        if not endpoint:
            raise AuthorizationError(
                f"the authorization server {record.issuer} does not offer the device flow; "
                "use the browser or paste-back login"
            )
        require_secure_url(endpoint, what="the device authorization endpoint")
        client = record.client
        if client is None or not _serves_device_grant(client, record.issuer, scope):
            client = choose_client(
                self.settings.client,
                None,
                issuer=record.issuer or "",
                server_metadata=metadata,
                redirect_uri="",
            )
        if client is None:
            client = yield from register_dynamically(
                replace(self.settings.client, application_type="native"),
                issuer=record.issuer or "",
                server_metadata=metadata,
                redirect_uri=None,
                scope=scope,
                grant_types=[DEVICE_GRANT, "refresh_token"],
            )
            record = replace(record, client=client)
            yield from self._save(record)
        auth_form, headers = client_auth(client)
        form = {"resource": record.resource_indicator, **auth_form}
        if scope:
            form["scope"] = scope
        response: HttpResponse = yield HttpRequest.post_form(
            endpoint,
            form,
            what="device authorization",
            error=AuthorizationError,
            headers=headers,
        )
        if response.status_code != 200:
            error, description = _error_fields(response, _secrets(form))
            raise AuthorizationError(
                f"the device authorization request failed with HTTP {response.status_code}"
                + (f": {error}" if error else "")
                + (f" ({description})" if description else ""),
                error=error,
                description=description,
            )
        try:
            answer = json.loads(response.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            answer = None
        if not isinstance(answer, dict) or not all(
            isinstance(answer.get(k), str) for k in ("device_code", "user_code", "verification_uri")
        ):
            raise AuthorizationError("the device authorization response is incomplete")
        given = answer.get("interval", 5)
        interval = number(given) if isinstance(given, (int, float)) else None
        lifetime = answer.get("expires_in")
        expires_in = number(lifetime) if isinstance(lifetime, (int, float)) else None
        for name, value in (("interval", interval), ("expires_in", expires_in)):
            if value is not None and value == float("inf"):
                raise AuthorizationError(
                    f"the device authorization response has an {name} too large to be a number"
                )
        if interval is None or not interval > 0:
            interval = 5.0
        interval = min(interval, MAX_POLL_INTERVAL)
        complete = answer.get("verification_uri_complete")
        yield ShowDeviceCode(
            answer["verification_uri"],
            answer["user_code"],
            complete if isinstance(complete, str) else None,
            expires_in,
        )
        timeout = self.settings.login_timeout
        # which ends the wait first: the login's own timeout, or the code's lifetime
        timed_out = not expires_in or timeout < expires_in
        deadline = self.clock() + min(expires_in or timeout, timeout)
        form = {
            "grant_type": DEVICE_GRANT,
            "device_code": answer["device_code"],
            "resource": record.resource_indicator,
        }
        while True:
            if self.clock() >= deadline and timed_out:
                raise AuthorizationError(
                    f"no approval within {timeout:g} s; the login did not finish in its time "
                    "(the device code was still valid). Run it again; timeout= allows longer"
                )
            if self.clock() >= deadline:
                raise AuthorizationError("the device code expired before the login was approved")
            # never past the deadline, whatever the server's interval
            yield Sleep(min(interval, max(0.0, deadline - self.clock())))
            try:
                tokens = yield from self._token_request(
                    record, client, form, requested_scope=scope, what="device code exchange"
                )
            except TokenError as exc:
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
            yield from self._save(replace(record, tokens=tokens))
            return tokens
