"""OAuthClientProvider: drives the sans-IO flow for httpx and httpx2, sync and async.

The request path with a valid token reads two attributes and the clock: no lock, no I/O.
Everything else (refresh, login) runs with the refresh lock held: an in-process lock (so 200
concurrent requests on an expired token make one token request) and the store's cross-process
lock (so 8 processes do too). Inside the lock the flow re-reads the store first: a token
another task or process just obtained is used, not fetched again. A process that finds the
store's lock taken re-reads the store between its tries and goes as soon as the holder has
stored a new token: waiters do not queue for a lock they no longer need.

Only the caller's own request goes through the caller's client. The flow's requests
(discovery, registration, token, revocation) go through a client of the provider's
(``flow_http.py``), so the caller's redirect, header and TLS settings never apply to them.
"""

from __future__ import annotations

import inspect
import logging
import shlex
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._http_compat import AuthBase
from .effects import (
    CompleteLogin,
    DeleteRecord,
    GetAssertion,
    GetSubjectToken,
    HttpRequest,
    LoadRecord,
    SaveRecord,
    ShowDeviceCode,
    Sleep,
    StartLogin,
)
from .errors import (
    AuthorizationError,
    DiscoveryError,
    MCPAuthError,
    TokenError,
)
from .flow import AuthFlow, FlowSettings, LogoutResult, MachineGrant
from .flow_http import FlowHttp, send_async, send_sync
from .metadata import (
    Challenge,
    UrlRules,
    canonical_resource_url,
    find_challenge,
    normalized_path,
    parse_www_authenticate,
    path_is_under,
    require_secure_setting,
)
from .registration import ClientSettings
from .store.token_store import TokenStore
from .tokens import ServerRecord, TokenSet
from .untrusted import clean_text, header_secrets, server_nonce

if TYPE_CHECKING:
    import asyncio

    # the login package is imported when a login is needed, not on reconnect
    from .login.base import Login, LoginCallable, LoginSession

# ``asyncio`` and the sync portal (``_portal``, which imports it) are imported where they are
# used: a sync client reconnecting with a valid stored token needs neither.

__all__ = ["OAuthClientProvider"]

logger = logging.getLogger("mcp_client_auth")

MAX_AUTH_ROUNDS = 3  # re-authorizations for one request before giving up
_JUDGED_PATHS = 256  # request paths whose verdict (token or not) is remembered
_LOCK = object()
_UNLOCK = object()
_TRY_LOCK = object()  # one try at the refresh lock (the first takes the in-process one): held?
_EMPTY_CHALLENGE = Challenge("Bearer", {})


_T = TypeVar("_T")


class _Request(Protocol):  # what httpx.Request and httpx2.Request share, as used here
    @property
    def url(self) -> Any: ...
    @property
    def headers(self) -> Any: ...
    def read(self) -> bytes: ...
    async def aread(self) -> bytes: ...


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def url(self) -> Any: ...
    @property
    def request(self) -> Any: ...


def _resolve_login(login: Login | LoginCallable | None, port: int | None) -> Login:
    from .login.base import CallbackLogin, Login

    if isinstance(login, Login):
        return login
    if login is not None:
        return CallbackLogin(login)
    from .login.browser import BrowserLogin

    return BrowserLogin(port=port)


def _expected_issuer(issuer: str | None, urls: UrlRules) -> str | None:
    if issuer is None:
        return None
    return require_secure_setting(issuer, what="issuer=", allow_insecure_http=urls.insecure_http)


def _scopes(scopes: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if scopes is None:
        return None
    if isinstance(scopes, str):
        return tuple(scopes.split())
    return tuple(s for scope in scopes for s in scope.split())


class OAuthClientProvider(AuthBase):
    """OAuth for one protected resource, as ``auth=`` of any httpx or httpx2 client.

    On a 401 it runs the MCP authorization flow (discovery, registration, PKCE login, token
    exchange), keeps the tokens in ``store`` and refreshes them when they expire. A new
    process with the same store sends its first request with the stored token.
    """

    def __init__(
        self,
        server_url: str,
        *,
        scopes: str | Sequence[str] | None = None,
        client_name: str = "mcp-client-auth",
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
        redirect_uri: str | None = None,
        redirect_port: int | None = None,
        store: TokenStore | None = None,
        login: Login | Callable[[str], str | Awaitable[str]] | None = None,
        timeout: float = 300.0,
        leeway: float = 60.0,
        interactive: bool = True,
        clock: Callable[[], float] = time.time,
        dpop: bool | None = None,
        verify: ssl.SSLContext | str | bool = True,
        transport: Any = None,
        issuer: str | None = None,
        allow_insecure_http: bool = False,
        grant: MachineGrant | None = None,
    ) -> None:
        """``dpop``: sender-constrained tokens (RFC 9449): ``None`` uses them where the
        authorization server offers them, ``True`` requires them, ``False`` never asks.

        ``verify`` and ``transport`` configure the provider's own client, which sends the
        flow's requests (discovery, registration, token, revocation): never the caller's, so
        the caller's redirect and TLS settings do not apply to them. ``verify`` takes what
        httpx takes (a CA bundle path or an ``ssl.SSLContext`` for a private CA; the
        ``SSL_CERT_FILE`` variable works too); ``transport`` is an httpx or httpx2 transport
        (a ``MockTransport`` in tests, or a custom network set-up).

        ``issuer``: the authorization server to use, by its issuer identifier (compared
        exactly, RFC 8414). A resource whose metadata does not list it is refused before any
        request reaches another server; with a pre-registered ``client_secret``, give it, so
        the secret can only go where it was issued.

        ``allow_insecure_http``: accept a plain-http ``server_url`` (and authorization server)
        off loopback, where tokens cross the network in clear; for development only (also
        ``MCP_CLIENT_AUTH_INSECURE_HTTP=1``). Without it such a URL is a
        :class:`ConfigurationError` here, before any request.

        ``grant``: a grant in place of the interactive login, where no person is present (what
        :class:`ClientCredentials` and :class:`IdentityAssertion` pass)."""
        urls = UrlRules.for_resource(server_url, insecure_http=allow_insecure_http)
        self.server_url = canonical_resource_url(server_url)
        if urls.insecure_http and not urls.loopback_allowed and self.server_url.startswith("http:"):
            logger.warning(
                "plain http to %s allowed by opt-in: its tokens cross the network in clear",
                self.server_url,
            )
        self._login_arg = login
        self._login: Login | None = None
        self._redirect_port = redirect_port
        self._store = store
        self._clock = clock
        self._http = FlowHttp(verify=verify, transport=transport)
        device = False
        fixed_port = redirect_port
        if login is not None:  # no strategy given: no need to import the device one
            from .login.browser import BrowserLogin
            from .login.device import DeviceLogin

            device = isinstance(login, DeviceLogin)
            if isinstance(login, BrowserLogin):
                fixed_port = fixed_port or login.port
        self._flow = AuthFlow(
            FlowSettings(
                server_url=self.server_url,
                client=ClientSettings(
                    client_name=client_name,
                    client_id=client_id,
                    client_secret=client_secret,
                    client_metadata_url=client_metadata_url,
                ),
                scopes=_scopes(scopes),
                redirect_uri=redirect_uri,
                fixed_port=fixed_port,
                leeway=leeway,
                login_timeout=timeout,
                interactive=interactive,
                device=device,
                prefer_device=self._browser_unavailable,
                dpop=dpop,
                issuer=_expected_issuer(issuer, urls),
                urls=urls,
                login_hint=self._login_hint,
                machine=grant,
            ),
            clock,
        )
        self._init_url_match()
        self._thread_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    # -- public helpers ------------------------------------------------------------------

    @property
    def store(self) -> TokenStore:
        """The token store (``TokenStore.default()`` unless one was given), made on first use."""
        if self._store is None:
            self._store = TokenStore.default()
        return self._store

    @property
    def tokens(self) -> TokenSet | None:
        """The tokens in memory (no secret in their repr), ``None`` before the first use."""
        return self._flow.tokens

    @property
    def record(self) -> ServerRecord | None:
        return self._flow.record

    def __repr__(self) -> str:
        return f"OAuthClientProvider({self.server_url!r})"

    def _login_hint(self) -> str:
        """How to log in to this provider's store: the CLI for a store folder (with
        ``--store`` unless it is the default one), this program for any other store."""
        folder = TokenStore.default_directory() if self._store is None else self._store.folder
        if folder is None:
            return "log in with this store (login(), or a provider with interactive=True)"
        words = ["mcp-client-auth", "login"]
        if folder != TokenStore.default_directory():
            words += ["--store", str(folder)]
        return f"run `{shlex.join([*words, self.server_url])}`"

    # -- without a request: for command-line tools and explicit logins --------------------

    async def aget_token(self) -> TokenSet:
        """A valid token: from memory or the store, refreshed when expired, else a login.

        With ``interactive=False`` a needed login raises :class:`LoginRequiredError`.
        """
        tokens = self._flow.valid_tokens()
        if tokens is not None:
            return tokens
        return await self._run_standalone(self._token_steps())  # type: ignore[no-any-return]

    def get_token(self) -> TokenSet:
        """:meth:`aget_token` for synchronous code."""
        tokens = self._flow.valid_tokens()
        if tokens is not None:
            return tokens
        from ._portal import run_sync

        return run_sync(self.aget_token())

    async def alogin(self) -> TokenSet:
        """Run a fresh interactive login now and store the tokens."""
        return await self._run_standalone(self._login_steps())  # type: ignore[no-any-return]

    def login(self) -> TokenSet:
        """:meth:`alogin` for synchronous code."""
        from ._portal import run_sync

        return run_sync(self.alogin())

    async def alogout(self, *, revoke: bool = True, forget_client: bool = False) -> LogoutResult:
        """Revoke the tokens where the server allows (RFC 7009) and forget them."""
        return await self._run_standalone(  # type: ignore[no-any-return]
            self._logout_steps(revoke=revoke, forget_client=forget_client)
        )

    def logout(self, *, revoke: bool = True, forget_client: bool = False) -> LogoutResult:
        """:meth:`alogout` for synchronous code."""
        from ._portal import run_sync

        return run_sync(self.alogout(revoke=revoke, forget_client=forget_client))

    def _token_steps(self) -> Generator[Any, Any, TokenSet]:
        fresh = yield from self._lock_or_fresh(self._flow.tokens)
        if fresh is not None:
            return fresh
        tokens = yield from self._flow.obtain(failed=None, challenge=None)
        if tokens is None:
            tokens = yield from self._flow.authorize(None)
        yield _UNLOCK
        return tokens

    def _lock_or_fresh(self, stale: TokenSet | None) -> Generator[Any, Any, TokenSet | None]:
        """Take the refresh lock (``None``), or return the valid token other than ``stale``
        that its holder stored while this one waited (without the lock: it is not needed).

        Between tries the store is read again: a waiter goes once the new token is stored,
        not when its turn at the lock comes, so N processes cost one refresh and N reads.
        """
        held = yield _TRY_LOCK
        while not held:
            fresh = self._flow.valid_tokens()
            if fresh is None or fresh == stale:
                yield from self._flow.load()
                fresh = self._flow.valid_tokens()
            if fresh is not None and fresh != stale:
                yield _UNLOCK  # the in-process lock, and the wait for the store's
                return fresh
            held = yield _TRY_LOCK
        return None

    def _login_steps(self) -> Generator[Any, Any, TokenSet]:
        yield _LOCK
        yield from self._flow.load()
        tokens = yield from self._flow.authorize(None)
        yield _UNLOCK
        return tokens

    def _logout_steps(self, *, revoke: bool, forget_client: bool) -> Generator[Any, Any, Any]:
        yield _LOCK
        result = yield from self._flow.logout(revoke=revoke, forget_client=forget_client)
        yield _UNLOCK
        return result

    async def _run_standalone(self, steps: Generator[Any, Any, Any]) -> Any:
        """Drive ``steps`` with the provider's own client (there is no caller's request)."""
        held = _AsyncHeld(self._http, self._http.library())
        value: Any = None
        try:
            while True:
                try:
                    item = _resume(steps, value)
                except StopIteration as stop:
                    return stop.value
                value = await self._effect_async(item, held)
        finally:
            await held.close()

    # -- which requests get the token ----------------------------------------------------

    def _init_url_match(self) -> None:
        import httpx

        url = httpx.URL(self.server_url)
        self._scheme = url.scheme
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._root = normalized_path(_path_of(url.raw_path))
        # raw path (and query) -> covered: a client sends to a few paths, over and over
        self._judged: dict[bytes, bool] = {}

    def _covers(self, url: Any) -> bool:
        """True for requests to the protected resource itself: the token goes nowhere else.

        The path is judged as the server will see it (the raw path as sent, normalised as
        RFC 3986 says), not as httpx decodes it: ``/mcp/%2e%2e/admin`` is ``/admin``."""
        if url.scheme != self._scheme or url.host != self._host:
            return False
        port = url.port or (443 if url.scheme == "https" else 80)
        if port != self._port:
            return False
        raw: bytes = url.raw_path
        covered = self._judged.get(raw)
        if covered is None:
            covered = path_is_under(self._root, _path_of(raw))
            if len(self._judged) >= _JUDGED_PATHS:
                self._judged.clear()
            self._judged[raw] = covered
        return covered

    def _authorize(self, request: Any, tokens: TokenSet) -> None:
        """Attach ``tokens``; a DPoP-bound token gets a fresh proof of its key (RFC 9449 7)."""
        request.headers["Authorization"] = tokens.authorization
        if tokens.token_type != "DPoP":
            return
        record = self._flow.record
        key = record.dpop_key if record is not None else None
        if key is not None:  # None only when a migration just dropped the key: a 401 follows
            request.headers["DPoP"] = key.proof(
                request.method,
                str(request.url),
                access_token=tokens.access_token,
                nonce=self._flow.resource_nonce(),
                now=self._clock(),
            )

    def _reauthorize(self, request: Any, tokens: TokenSet) -> None:
        """:meth:`_authorize` a request that was sent before (no stale proof left on it)."""
        request.headers.pop("DPoP", None)
        self._authorize(request, tokens)

    def _note_nonce(self, response: Any) -> None:
        """Keep the resource's newest DPoP nonce (RFC 9449 9) for the next proofs."""
        nonce = server_nonce(response.headers.get("dpop-nonce"))
        if nonce:
            self._flow.note_resource_nonce(nonce)

    # -- the flow, as one generator both drivers run ---------------------------------------

    def _steps(
        self, request: _Request, sent: TokenSet | None, response: _Response | None
    ) -> Generator[Any, Any, None]:
        """Everything after the fast path: yields the request to send, effects, and locks."""
        flow = self._flow
        if response is None:
            sent = None
            if flow.record is None:
                # First use: read the store without the lock (the lock guards changes, and a
                # valid stored token needs none), so a reconnect costs one read.
                yield from flow.load()
                sent = flow.valid_tokens()
            if sent is None:
                stale = flow.tokens  # read before waiting: whoever held the lock may replace it
                sent = yield from self._lock_or_fresh(stale)
                if sent is None:
                    sent = yield from flow.obtain(failed=stale, challenge=None)
                    yield _UNLOCK
            if sent is not None:
                self._authorize(request, sent)
            response = yield request
            if sent is not None and sent.dpop_bound:
                self._note_nonce(response)
        refreshed = False
        nonce_retried = False
        rounds = 0
        while True:
            assert response is not None
            status = response.status_code
            if status not in (401, 403):
                return
            challenges = self._challenges(response)
            offers_dpop = any(c.scheme.lower() == "dpop" for c in challenges)
            if offers_dpop:
                flow.resource_offers_dpop = True
            if (
                status == 401
                and sent is not None
                and sent.dpop_bound
                and not nonce_retried
                and server_nonce(response.headers.get("dpop-nonce"))
                and _asks_for_nonce(challenges)
            ):
                # RFC 9449 9: the resource wants its nonce in the proof; once per token
                nonce_retried = True
                self._note_nonce(response)
                self._reauthorize(request, sent)
                response = yield request
                self._note_nonce(response)
                continue
            challenge = find_challenge(challenges)
            if status == 403 and (
                challenge is None or challenge.param("error") != "insufficient_scope"
            ):
                return
            if rounds == MAX_AUTH_ROUNDS:
                raise AuthorizationError(
                    f"{self.server_url} kept refusing freshly issued tokens (HTTP "
                    f"{status} after {MAX_AUTH_ROUNDS} authorizations); "
                    "check the scopes it requires and the account's permissions"
                )
            rounds += 1
            yield _LOCK
            tokens = yield from flow.obtain(
                failed=sent,
                challenge=challenge or _EMPTY_CHALLENGE,
                allow_refresh=not refreshed,
                dpop_refused=bool(
                    status == 401
                    and sent is not None
                    and sent.dpop_bound
                    and challenges
                    and not offers_dpop
                ),
            )
            yield _UNLOCK
            if tokens is None:
                return
            refreshed = refreshed or (
                sent is not None and tokens.access_token != sent.access_token and status == 401
            )
            if tokens != sent:
                nonce_retried = False
            sent = tokens
            self._reauthorize(request, tokens)
            response = yield request
            if tokens.dpop_bound:
                self._note_nonce(response)

    @staticmethod
    def _challenges(response: _Response) -> list[Challenge]:
        values = response.headers.get_list("www-authenticate")
        if not values:
            return []
        try:
            return parse_www_authenticate(values)
        except DiscoveryError as exc:  # quoting the header: what the request carried is cut out
            sent = header_secrets(response.request.headers)
            logger.warning(
                "ignoring a malformed WWW-Authenticate header: %s",
                clean_text(str(exc), secrets=sent),
            )
            return []

    # -- sync driver -----------------------------------------------------------------------

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        if not self._covers(request.url):
            yield request
            return
        tokens = self._flow.valid_tokens()
        response = None
        if tokens is not None:
            request.read()
            self._authorize(request, tokens)
            response = yield request
            if tokens.token_type == "DPoP":
                self._note_nonce(response)
            if response.status_code not in (401, 403):
                return
        else:
            request.read()
        yield from self._drive_sync(self._steps(request, tokens, response), request)

    def _drive_sync(
        self, steps: Generator[Any, Any, None], request: Any
    ) -> Generator[Any, Any, None]:
        locked: Any = None
        sessions: list[LoginSession] = []
        client: Any = None
        synchronous = True
        value: Any = None
        try:
            while True:
                try:
                    item = _resume(steps, value)
                except StopIteration:
                    return
                value = None
                if item is request:
                    value = yield request
                elif isinstance(item, HttpRequest):
                    if client is None:
                        # On the network, sent from the sync portal's event loop: there the
                        # total deadline covers every read (a sync client bounds only each one,
                        # and a server trickling its headers evades that). A transport of the
                        # user's is driven the way it serves, synchronously where it can.
                        library = self._http.library(request)
                        synchronous = self._http.transport is not None and self._http.serves(
                            library, asynchronous=False
                        )
                        make = self._http.sync_client if synchronous else self._http.async_client
                        client = make(library)
                    try:
                        value = (
                            send_sync(client, item)
                            if synchronous
                            else _on_portal(send_async(client, item))
                        )
                    except MCPAuthError as exc:
                        value = _Failed(exc)
                elif item is _LOCK or item is _TRY_LOCK:
                    if locked is None:
                        locked = self._lock_sync(wait=item is _LOCK)
                    else:  # a waiter's next try (_TRY_LOCK only)
                        time.sleep(locked.retry_in())
                        locked.try_acquire()
                    value = _holds(locked)
                elif item is _UNLOCK:
                    self._close_sessions_sync(sessions)
                    self._unlock_sync(locked)
                    locked = None
                elif isinstance(item, LoadRecord) and self.store.never_suspends:
                    # the reconnect's first read: no portal thread, loop or asyncio import
                    from ._eager import run_eagerly

                    value = run_eagerly(partial(self._perform, item, sessions), _on_portal)
                else:
                    value = _on_portal(self._perform(item, sessions))
        finally:
            if client is not None and synchronous:
                self._http.release_sync(client)
            elif client is not None:
                _on_portal(self._http.release_async(client))
            self._close_sessions_sync(sessions)
            if locked is not None:
                self._unlock_sync(locked)

    def _lock_sync(self, *, wait: bool) -> Any:
        """The in-process lock, then the store's: held, or (``wait=False``) tried once.

        A lock that can be polled (the disk store's) is taken from this thread; others
        through the sync portal.
        """
        self._thread_lock.acquire()
        try:
            cm: Any = self.store.lock(self.server_url)
            if not _polls(cm):
                _on_portal(cm.__aenter__())
                return cm
            if not cm.try_acquire() and wait:
                try:
                    time.sleep(cm.retry_in())
                    while not cm.try_acquire():
                        time.sleep(cm.retry_in())
                except BaseException:
                    cm.release()
                    raise
            return cm
        except BaseException:
            self._thread_lock.release()
            raise

    def _unlock_sync(self, cm: Any) -> None:
        try:
            if _polls(cm):
                cm.release()  # held, or still waited for
            else:
                _on_portal(cm.__aexit__(None, None, None))
        finally:
            self._thread_lock.release()

    @staticmethod
    def _close_sessions_sync(sessions: list[LoginSession]) -> None:
        while sessions:
            _on_portal(sessions.pop().aclose())

    # -- async driver ----------------------------------------------------------------------

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        if not self._covers(request.url):
            yield request
            return
        tokens = self._flow.valid_tokens()
        response = None
        await request.aread()
        if tokens is not None:
            self._authorize(request, tokens)
            response = yield request
            if tokens.token_type == "DPoP":
                self._note_nonce(response)
            if response.status_code not in (401, 403):
                return
        steps = self._steps(request, tokens, response)
        held = _AsyncHeld(self._http, self._http.library(request))
        value: Any = None
        try:
            while True:
                try:
                    item = _resume(steps, value)
                except StopIteration:
                    return
                if item is request:
                    value = yield request
                else:
                    value = await self._effect_async(item, held)
        finally:
            await held.close()

    def _async_lock(self) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    async def _effect_async(self, item: Any, held: _AsyncHeld) -> Any:
        """One step for both async drivers: a flow request, the refresh lock, store, login."""
        if isinstance(item, HttpRequest):
            return await held.send(item)
        if item is _LOCK:
            await held.acquire(self._async_lock(), self.store.lock(self.server_url))
            return None
        if item is _TRY_LOCK:
            return await held.try_acquire(self._async_lock(), self.store.lock, self.server_url)
        if item is _UNLOCK:
            await held.release()
            return None
        return await self._perform(item, held.sessions)

    # -- effects shared by both drivers ------------------------------------------------------

    def _browser_unavailable(self) -> bool:
        """No browser can be opened here and the user did not ask for the loopback login
        itself (a fixed port, ``open_browser=False``): the device flow is better, where
        offered."""
        from .login.browser import BrowserLogin

        login = self._get_login()
        return isinstance(login, BrowserLogin) and login.device_flow_preferred(self._redirect_port)

    def _get_login(self) -> Login:
        if self._login is None:
            self._login = _resolve_login(self._login_arg, self._redirect_port)
        return self._login

    async def _perform(self, effect: Any, sessions: list[LoginSession]) -> Any:
        if isinstance(effect, LoadRecord):
            return await self.store.get(self.server_url)
        if isinstance(effect, DeleteRecord):
            await self.store.delete(self.server_url)
            return None
        if isinstance(effect, SaveRecord):
            await self.store.put(effect.record)
            return None
        if isinstance(effect, StartLogin):
            session = await self._get_login().start(
                redirect_uri=effect.redirect_uri, redirect_port=self._redirect_port
            )
            sessions.append(session)
            return session
        if isinstance(effect, CompleteLogin):
            if effect.check is not None:
                effect.session.check_callbacks_with(effect.check)
            return await effect.session.complete(
                effect.url, state=effect.state, timeout=effect.timeout
            )
        if isinstance(effect, Sleep):
            await self._get_login().sleep(effect.seconds)
            return None
        if isinstance(effect, GetAssertion):
            source = getattr(self, "_assertion", None)
            if source is None:  # pragma: no cover - only IdentityAssertion asks
                raise MCPAuthError("this provider has no assertion to present")
            result = source(effect.audience, effect.resource)
            if inspect.isawaitable(result):
                result = await result
            return str(result)
        if isinstance(effect, GetSubjectToken):
            subject: Any = effect.source
            if not isinstance(subject, str):
                subject = subject()
                if inspect.isawaitable(subject):
                    subject = await subject
            if not isinstance(subject, str) or not subject:
                raise TokenError("the subject token source returned no token")
            return subject
        if isinstance(effect, ShowDeviceCode):
            await self._get_login().show_device_code(effect)
            return None
        raise MCPAuthError(f"unknown flow effect {type(effect).__name__}")  # pragma: no cover


class _Failed:
    """A flow request that could not be sent: raised inside the flow, which may handle it."""

    def __init__(self, error: MCPAuthError) -> None:
        self.error = error


def _on_portal(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """The sync portal's ``run_sync``, imported (with asyncio) only when a step needs it."""
    from ._portal import run_sync

    return run_sync(coroutine)


def _path_of(raw: bytes) -> str:
    """The path of an httpx or httpx2 URL's ``raw_path``: as it goes on the wire
    (percent-encoded), without the query."""
    return raw.partition(b"?")[0].decode("ascii", "replace") or "/"


def _resume(steps: Generator[Any, Any, Any], value: Any) -> Any:
    """The flow's next step, given what its last one produced (or the error it raised)."""
    if isinstance(value, _Failed):
        return steps.throw(value.error)
    return steps.send(value)


def _polls(lock: Any) -> bool:
    """Whether a store lock can be tried without waiting (the disk store's :class:`FileLock`);
    others (Redis's, a user's) are only entered and left as async context managers."""
    return hasattr(lock, "try_acquire") and hasattr(lock, "retry_in") and hasattr(lock, "release")


def _holds(lock: Any) -> bool:
    return not _polls(lock) or bool(lock.locked)


def _asks_for_nonce(challenges: Sequence[Challenge]) -> bool:
    return any(
        c.scheme.lower() == "dpop" and c.param("error") == "use_dpop_nonce" for c in challenges
    )


class _AsyncHeld:
    """What one async flow run holds: the refresh lock, the login sessions it opened, and the
    provider's own client for the flow's requests (made on the first one)."""

    def __init__(self, http: FlowHttp, library: Any) -> None:
        self.sessions: list[LoginSession] = []
        self._locked: tuple[asyncio.Lock, Any] | None = None
        self._http = http
        self._library = library
        self._client: Any = None
        self._async = True

    async def send(self, item: HttpRequest) -> Any:
        """The answer to a flow request, or the error sending it raised (:class:`_Failed`)."""
        if self._client is None:
            self._async = self._http.serves(self._library, asynchronous=True)
            make = self._http.async_client if self._async else self._http.sync_client
            self._client = make(self._library)
        try:
            if self._async:
                return await send_async(self._client, item)
            import asyncio

            return await asyncio.to_thread(send_sync, self._client, item)  # a sync transport
        except MCPAuthError as exc:
            return _Failed(exc)

    async def acquire(self, lock: asyncio.Lock, store_lock: Any) -> None:
        await lock.acquire()
        try:
            await store_lock.__aenter__()
        except BaseException:
            lock.release()
            raise
        self._locked = (lock, store_lock)

    async def try_acquire(
        self, lock: asyncio.Lock, store_lock: Callable[[str], Any], resource: str
    ) -> bool:
        """One try at the refresh lock: the first takes the in-process lock and makes the
        store's; a later one sleeps as the store's lock says first. Whether it is held."""
        if self._locked is None:
            await lock.acquire()
            try:
                cm = store_lock(resource)
                if not _polls(cm):
                    await cm.__aenter__()
                    self._locked = (lock, cm)
                    return True
                self._locked = (lock, cm)  # held or waited for: release() lets go of either
                return bool(cm.try_acquire())
            except BaseException:
                if self._locked is None:
                    lock.release()
                raise
        cm = self._locked[1]
        import anyio

        await anyio.sleep(cm.retry_in())
        return bool(cm.try_acquire())

    async def close(self) -> None:
        """The end of the run: :meth:`release`, and close the client."""
        try:
            await self.release()
        finally:
            if self._client is not None:
                client, self._client = self._client, None
                if self._async:
                    await self._http.release_async(client)
                else:
                    self._http.release_sync(client)

    async def release(self) -> None:
        """Close the sessions, then let go of the lock; safe to call when nothing is held."""
        while self.sessions:
            await self.sessions.pop().aclose()
        if self._locked is not None:
            lock, store_lock = self._locked
            self._locked = None
            try:
                if _polls(store_lock):
                    store_lock.release()  # held, or still waited for
                else:
                    await store_lock.__aexit__(None, None, None)
            finally:
                lock.release()
