"""The authorization state machine: from a 401 to a stored token, refresh and step-up.

Sans-IO: every step is a generator that yields :mod:`effects` (send this request, read the
store, show the login) and receives their results. The drivers in ``provider.py`` perform
them with httpx or httpx2, sync or async; the clock is passed in. The provider calls
:meth:`AuthFlow.obtain` with its refresh lock held, so one process refreshes at a time.
"""

from __future__ import annotations

import functools
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
    MCPAuthError,
    TokenError,
)
from .metadata import (
    Challenge,
    UrlRules,
    origin,
    require_secure_url,
)
from .registration import (
    ClientSettings,
    choose_client,
    client_auth,
    covers_scope,
    register_dynamically,
    update_registration,
)
from .tokens import (
    ANONYMOUS,
    ClientRegistration,
    ServerRecord,
    TokenSet,
    token_set_from_response,
)
from .untrusted import (
    answer_text,
    clean_text,
    parse_json,
    read_error,
    server_nonce,
    server_number,
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
MIN_POLL_INTERVAL = 1.0  # ... and raised to this: a server's 0 or 1e-300 is no reason to spin
DEFAULT_POLL_INTERVAL = 5.0  # RFC 8628 3.2: without an interval, 5 s
MAX_CODE_LIFETIME = 24 * 3600.0  # a device code's expires_in is capped at this
LAST_POLL_GRACE = 5.0  # a poll sent as the login's time runs out may take this long to answer
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
    # where a server may send the client: https, and loopback only for a loopback resource
    urls: UrlRules = field(default_factory=UrlRules)
    # what LoginRequiredError tells the user to do (the command that logs in to the same store)
    login_hint: Callable[[], str] | None = None

    @property
    def own_credentials(self) -> bool:
        """Whether this client presents credentials the user gave: a pre-registered secret, a
        private key, or an identity assertion (fixed, from a callable, or an ID-JAG). These
        belong to one authorization server, and another one could replay them there, so they
        are bound to the first server they are used with (or ``issuer=``)."""
        return bool(
            self.client.client_secret
            or self.private_key is not None
            or self.grant == JWT_BEARER_GRANT
        )


@dataclass(frozen=True)
class LogoutResult:
    """What a logout did: which tokens the server revoked, and what was forgotten locally."""

    revoked: tuple[str, ...] = ()
    forgotten: bool = False
    revocation_supported: bool = False
    errors: tuple[str, ...] = ()


def _wants_a_secret_field(response: HttpResponse, client: ClientRegistration) -> bool:
    """A public client's request refused only for want of a ``client_secret`` field."""
    if (
        response.status_code != 400
        or client.client_secret
        or (client.token_endpoint_auth_method != "none")
    ):
        return False
    answer = read_error(response)
    return answer.error == "invalid_request" and "client_secret" in (answer.description or "")


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return tuple(seen)


def _serves_device_grant(client: ClientRegistration, issuer: str | None) -> bool:
    """Whether a stored client can poll for a device code at ``issuer``.

    A client registered for a browser login lists only the code grant: an authorization server
    refuses it the device grant (``device_code is not allowed for this client``), so the device
    flow registers a client of its own. A client the user gave (pre-registered, metadata
    document) is trusted to carry the grant. Its registered scope does not decide: a step-up
    asks with it first, as the browser login does.
    """
    if client.issuer != issuer:
        return False
    return client.kind != "dynamic" or DEVICE_GRANT in client.grant_types


def _widened(client: ClientRegistration, scope: str) -> str:
    """The scope ``client`` was registered for, with ``scope`` added."""
    return " ".join(_unique((*(client.scope or "").split(), *scope.split())))


def _registration_scope(
    scope: str,
    resource_metadata: Mapping[str, Any] | None,
    server_metadata: Mapping[str, Any] | None,
) -> str:
    """What a new dynamic registration asks for: this login's ``scope`` and every scope the
    resource and its authorization server advertise (``scopes_supported``).

    A registration's scope is a ceiling, not a grant: each login still asks for its own scope.
    Registering for what is advertised lets a later step-up ask for more with the same client,
    where the server holds a client to its registered scope (oidc-provider, the mcp SDK's);
    a new registration would be a new client_id, and servers bind MCP sessions to it. A login
    that asks for no scope registers for none: a server may grant a scopeless request all the
    client registered for.
    """
    if not scope.strip():
        return ""
    advertised: list[str] = []
    for document in (resource_metadata or {}, server_metadata or {}):
        supported = document.get("scopes_supported")
        if isinstance(supported, list):
            advertised += [s for s in supported if isinstance(s, str) and " " not in s]
    return " ".join(_unique((*scope.split(), *advertised)))


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
        # asking with a client registered for fewer scopes: a server may refuse (invalid_scope)
        beyond_registration = False
        if (
            client is None
            and stored_client is not None
            and stored_client.kind == "dynamic"
            and stored_client.issuer == found.issuer
        ):
            widened = _widened(stored_client, scope)
            if redirect_uri in stored_client.redirect_uris:
                # Registered for fewer scopes than this login asks (a step-up). The client_id
                # must survive it: servers bind MCP sessions to it. Widen the registration
                # where the server manages registrations (RFC 7592); else ask with the stored
                # client, since most servers let a client ask for more than it registered, and
                # register anew only when this server refuses that (below).
                client = yield from update_registration(
                    settings.client, stored_client, scope=widened, rules=settings.urls
                )
                if client is None:
                    client, beyond_registration = stored_client, True
            else:
                # registered for another redirect URI (a port the user fixed): move the
                # registration there (RFC 7592: the same client_id), else register anew
                client = yield from update_registration(
                    settings.client,
                    stored_client,
                    scope=widened,
                    rules=settings.urls,
                    redirect_uri=redirect_uri,
                )
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
                scope=_registration_scope(scope, found.resource_metadata, metadata),
                rules=settings.urls,
                protocol_version=settings.protocol_version,
                narrow_scope=scope,
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
        if "offline_access" in scope.split() and openid_provider(metadata):
            # OpenID Connect Core 1.0 section 11: an OpenID provider grants offline_access (the
            # refresh token) only with prompt=consent; it ignores the scope otherwise. A server
            # that is not an OpenID provider is never sent prompt, which it may refuse.
            params["prompt"] = "consent"
        dpop_key = self._dpop_key(record)
        if dpop_key is not None:
            params["dpop_jkt"] = dpop_key.thumbprint  # binds the code (RFC 9449 10)
        endpoint = settings.urls.check(
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
        try:
            code = check(callback)
        except AuthorizationError as exc:
            if beyond_registration and exc.error == "invalid_scope" and _retry:
                again = self._register_for(scope, redirect_uri, record, found, challenge, step_up)
                return (yield from again)
            raise
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
            if exc.error == "invalid_scope" and beyond_registration and _retry:
                again = self._register_for(scope, redirect_uri, record, found, challenge, step_up)
                return (yield from again)
            raise
        yield from self._save(replace(record, tokens=tokens))
        return tokens

    def _register_for(
        self,
        scope: str,
        redirect_uri: str,
        record: ServerRecord,
        found: Discovered,
        challenge: Challenge | None,
        step_up: bool,
    ) -> Generator[Effect, Any, TokenSet]:
        """The server refused the stored client the wider ``scope`` (``invalid_scope``): the
        one case where a step-up takes a new registration (and so a new client_id, which ends
        the MCP sessions a server bound to the old one). Register for it, then log in again."""
        stored = record.client
        assert stored is not None
        logger.info(
            "%s refused client %r the scope %r; registering a new client for it",
            found.issuer,
            stored.client_id,
            scope,
        )
        widened = _widened(stored, scope)
        client = yield from register_dynamically(
            self.settings.client,
            issuer=found.issuer,
            server_metadata=found.server_metadata,
            redirect_uri=redirect_uri,
            scope=_registration_scope(widened, found.resource_metadata, found.server_metadata),
            rules=self.settings.urls,
            protocol_version=self.settings.protocol_version,
            narrow_scope=widened,
        )
        yield from self._save(replace(record, client=client))
        return (yield from self.authorize(challenge, step_up=step_up, _retry=False, found=found))

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
                    f"proofs only as {clean_text(', '.join(map(str, algorithms)), 200)}, not "
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
        timeout: Callable[[], float | None] = lambda: None,
    ) -> Generator[Effect, Any, TokenSet]:
        """One token request; with DPoP, a proof, and one retry when the server asks for a
        nonce (RFC 9449 8). ``timeout`` says how long each attempt may take, when less than
        the driver's deadline (a device poll: what is left of the login's timeout)."""
        metadata = record.server_metadata or {}
        endpoint = self.settings.urls.check(metadata["token_endpoint"], what="the token endpoint")
        key = self._dpop_key(record)
        where = (AUTHORIZATION_SERVER, origin(endpoint))
        for attempt in (1, 2):
            auth_form, headers = self._client_authentication(client, record)
            if key is not None:
                proof = key.proof("POST", endpoint, nonce=self.nonces.get(where), now=self.clock())
                headers = {**headers, "DPoP": proof}
            sent = {**form, **auth_form}
            response: HttpResponse = yield HttpRequest.post_form(
                endpoint, sent, what=what, error=TokenError, headers=headers, timeout=timeout()
            )
            if key is None:
                break
            nonce = server_nonce(response.headers.get("dpop-nonce"))
            if nonce:
                self.nonces[where] = nonce
            if (
                attempt == 1
                and nonce
                and response.status_code in (400, 401)
                and read_error(response).error == "use_dpop_nonce"
            ):
                logger.debug("the token endpoint %s asked for a DPoP nonce; retrying", endpoint)
                continue
            break
        tokens = self._parse_token_response(response, what=what, requested_scope=requested_scope)
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
        self, response: HttpResponse, *, what: str, requested_scope: str | None
    ) -> TokenSet:
        if response.status_code != 200:
            answer = read_error(response)
            retry = (
                " The stored tokens are kept; try again later."
                if (response.status_code >= 500 or answer.error is None)
                else ""
            )
            raise answer.as_error(
                TokenError,
                f"the {what} at {response.url} failed with HTTP {response.status_code}"
                f"{answer.detail}.{retry}",
            )
        if response.truncated:
            raise TokenError(f"the {what} response from {response.url} is too large")
        document = parse_json(
            response.body, what=f"{what} response", url=response.url, error=TokenError
        )
        try:
            return token_set_from_response(
                document, now=self.clock(), requested_scope=requested_scope or None
            )
        except ValueError as exc:
            reason = answer_text(response, exc, 300)
            raise TokenError(f"invalid {what} response from {response.url}: {reason}") from None

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
        try:
            if revoke and endpoint and tokens is not None and client is not None:
                yield from self._revoke(endpoint, tokens, client, record, revoked, errors)
        except Exception:
            # not even an unforeseen error keeps the tokens (whatever the server sent): the
            # user asked to be logged out here first. Not ``finally``: a generator closed
            # while it waits for an answer must not yield again.
            yield from self._forget(record, forget_client=forget_client)
            raise
        yield from self._forget(record, forget_client=forget_client)
        return LogoutResult(tuple(revoked), True, bool(endpoint), tuple(errors))

    def _forget(self, record: ServerRecord, *, forget_client: bool) -> Generator[Effect, Any, None]:
        if forget_client:
            yield DeleteRecord()
            self.record = None
        else:
            yield from self._save(replace(record, tokens=None))

    def _revoke(
        self,
        endpoint: str,
        tokens: TokenSet,
        client: ClientRegistration,
        record: ServerRecord,
        revoked: list[str],
        errors: list[str],
    ) -> Generator[Effect, Any, None]:
        """Ask the server to revoke each token, noting in ``revoked`` and ``errors`` how it went."""
        try:
            self.settings.urls.check(endpoint, what="the revocation endpoint")
        except MCPAuthError as exc:
            errors.append(str(exc))
            return
        empty_secret: dict[str, str] = {}  # once a server asked for it (below), every time
        candidates = (
            ("refresh_token", tokens.refresh_token),
            ("access_token", tokens.access_token),
        )
        for hint, value in candidates:
            if not value:
                continue
            auth_form, headers = self._client_authentication(client, record)
            form = {"token": value, "token_type_hint": hint, **auth_form, **empty_secret}
            try:
                response: HttpResponse = yield HttpRequest.post_form(
                    endpoint, form, what="token revocation", error=TokenError, headers=headers
                )
                if "client_secret" not in form and _wants_a_secret_field(response, client):
                    # A server that requires the client_secret field even of a public
                    # client (the mcp SDK's, and so FastMCP's): RFC 6749 2.3.1 lets a
                    # client send an empty secret as an empty field. Only after exactly this
                    # refusal: a compliant server would take the empty field as a secret
                    # the client was not registered with.
                    logger.info("%s requires a client_secret field; sending it empty", endpoint)
                    empty_secret = {"client_secret": ""}
                    form = {**form, **empty_secret}
                    response = yield HttpRequest.post_form(
                        endpoint,
                        form,
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
                answer = read_error(response)
                error, description = answer.error, answer.description
                errors.append(
                    f"{hint}: HTTP {response.status_code}"
                    + (f" ({error})" if error else "")
                    + (f": {description}" if description else "")
                )

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
            kind="pre-registered" if client_id else ANONYMOUS,
        )
        record = replace(record, client=client)
        # bound before the credentials leave: should this grant fail, they still go to no
        # other server than this one (see _expected_issuer)
        yield from self._save(record)
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

    def _client_authentication(
        self, client: ClientRegistration, record: ServerRecord
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Form fields and headers that authenticate ``client`` for one request to its
        authorization server: the token request, revocation (RFC 7009 2.1) and device
        authorization (RFC 8628 3.1) alike, each the way the client was registered; for a
        ``private_key_jwt`` client, a client assertion signed for this request alone."""
        form, headers = client_auth(client)
        audience = client.issuer or record.issuer or ""
        return {**form, **self._client_assertion(client, audience)}, headers

    def _client_assertion(self, client: ClientRegistration, issuer: str) -> dict[str, str]:
        """A fresh client assertion (RFC 7523 2.2) where the user gave a private key.

        Every request of a ``private_key_jwt`` client authenticates with one, the refresh and
        the revocation too (without it a server answers ``invalid_client``), and each attempt
        signs anew: a server refuses an assertion whose ``jti`` it has seen, as on a retry with
        a DPoP nonce.
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

    def _register_device_client(
        self, record: ServerRecord, scope: str
    ) -> Generator[Effect, Any, ClientRegistration]:
        """A client of its own for the device grant, registered as a browser login's is: for
        ``scope`` and what the resource and the server advertise."""
        return (
            yield from register_dynamically(
                replace(self.settings.client, application_type="native"),
                issuer=record.issuer or "",
                server_metadata=record.server_metadata or {},
                redirect_uri=None,
                scope=_registration_scope(scope, record.resource_metadata, record.server_metadata),
                rules=self.settings.urls,
                grant_types=[DEVICE_GRANT, "refresh_token"],
                narrow_scope=scope,
            )
        )

    def _device_authorization(
        self,
        endpoint: str,
        record: ServerRecord,
        client: ClientRegistration,
        scope: str,
        timeout: float,
    ) -> Generator[Effect, Any, HttpResponse]:
        """The device authorization request (RFC 8628 3.1), within ``timeout`` seconds."""
        auth_form, headers = self._client_authentication(client, record)
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

    def _device_grant(self, record: ServerRecord, scope: str) -> Generator[Effect, Any, TokenSet]:
        metadata = record.server_metadata or {}
        endpoint = metadata.get("device_authorization_endpoint")
        if not endpoint:
            raise AuthorizationError(
                f"the authorization server {record.issuer} does not offer the device flow; "
                "use the browser or paste-back login"
            )
        self.settings.urls.check(endpoint, what="the device authorization endpoint")
        client = record.client
        if client is None or not _serves_device_grant(client, record.issuer):
            client = choose_client(
                self.settings.client,
                None,
                issuer=record.issuer or "",
                server_metadata=metadata,
                redirect_uri="",
            )
        # asking with a client registered for fewer scopes (a step-up): it keeps the client_id
        # where the server allows it; a refusal (invalid_scope) registers anew, below
        beyond_registration = client is not None and not covers_scope(client, scope)
        if client is None:
            client = yield from self._register_device_client(record, scope)
            record = replace(record, client=client)
            yield from self._save(record)
        start = self.clock()
        timeout = self.settings.login_timeout
        response = yield from self._device_authorization(endpoint, record, client, scope, timeout)
        if (
            beyond_registration
            and response.status_code == 400
            and read_error(response).error == "invalid_scope"
        ):
            logger.info("%s refused this client the scope %r; registering anew", endpoint, scope)
            widened = _widened(client, scope)
            client = yield from self._register_device_client(record, widened)
            record = replace(record, client=client)
            yield from self._save(record)
            remaining = max(0.0, timeout - (self.clock() - start))
            response = yield from self._device_authorization(
                endpoint, record, client, scope, remaining
            )
        if response.status_code != 200:
            answer = read_error(response)
            raise answer.as_error(
                AuthorizationError,
                f"the device authorization request failed with HTTP {response.status_code}"
                f"{answer.detail}",
            )
        code = _device_code(response)
        pages = {
            "verification_uri": code.verification_uri,
            "verification_uri_complete": code.verification_uri_complete,
        }
        for name, uri in pages.items():
            if uri is not None:  # shown, and opened with open_browser=True
                self.settings.urls.check(uri, what=f"the {name} of the device login")
        yield ShowDeviceCode(
            code.verification_uri, code.user_code, code.verification_uri_complete, code.expires_in
        )
        # the login's own timeout bounds the wait whatever the server says (each poll may take
        # only what is left of it, and a few seconds more for the last); the code's lifetime
        # may end it sooner (the message then says so)
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
            return max(0.0, deadline - self.clock())

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
                tokens = yield from self._token_request(
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
            yield from self._save(replace(record, tokens=tokens))
            return tokens


@dataclass(frozen=True)
class _DeviceCode:
    """A device authorization response (RFC 8628 3.2), every field checked."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float | None  # None: not said (or 0), so only the login's timeout applies
    interval: float


def _device_code(response: HttpResponse) -> _DeviceCode:
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
    return _DeviceCode(
        answer["device_code"],
        clean_text(answer["user_code"], 64),  # only ever shown: whatever shows it gets it clean
        answer["verification_uri"],
        complete,
        expires_in,
        max(interval, MIN_POLL_INTERVAL),
    )
