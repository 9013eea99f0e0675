"""OAuthClientProvider: OAuth for one protected resource, as ``auth=`` of httpx and httpx2
clients, sync and async.

The request path with a valid token reads two attributes and the clock: no lock, no I/O.
Everything else is a run of the resource-side steps (``resource.py``) over the sans-IO flow
(``flow.py``), driven by ``drive.py`` with a sync or an async performer. Everything that
changes the tokens runs with the refresh lock held: an in-process lock (so concurrent requests
on an expired token make one token request) and the store's cross-process lock (so do several
processes).

Only the caller's own request goes through the caller's client. The flow's requests
(discovery, registration, token, revocation) go through a client of the provider's
(``flow_http.py``), so the caller's redirect, header and TLS settings never apply to them.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from ._http_compat import AuthBase
from .blocking import on_portal, run_blocking
from .flow import AuthFlow, FlowSettings
from .flow_clients import FlowHttp
from .flow_types import ClientSettings
from .perform import Context, RefreshLocks
from .resource import ResourceSide, Steps
from .store.token_store import TokenStore
from .tokens import ServerRecord, TokenSet
from .url_rules import UrlRules, require_secure_setting
from .urls import canonical_resource_url

if TYPE_CHECKING:
    # the login package is imported when a login is needed, not on reconnect
    from .login.base import Login, LoginCallable
    from .logout import LogoutResult
    from .machine_grant import MachineGrant

# ``asyncio`` and the sync portal (``_portal``, which imports it) are imported where they are
# used, and so are the drivers and performers (``drive``, ``perform_sync``, ``perform_async``):
# a client reconnecting with a valid stored token needs none of them.

__all__ = ["OAuthClientProvider"]

logger = logging.getLogger("mcp_client_auth")


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
        self._first_read_done = False  # see _first_read_sync
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
        self._resource = ResourceSide(self._flow, self.server_url, clock)
        self._context = Context(
            server_url=self.server_url,
            store=lambda: self.store,
            login=self._get_login,
            redirect_port=redirect_port,
            http=FlowHttp(verify=verify, transport=transport),
            locks=RefreshLocks(),
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
        import shlex  # only for this message

        return f"run `{shlex.join([*words, self.server_url])}`"

    # -- without a request: for command-line tools and explicit logins --------------------

    async def aget_token(self) -> TokenSet:
        """A valid token: from memory or the store, refreshed when expired, else a login.

        With ``interactive=False`` a needed login raises :class:`LoginRequiredError`.
        """
        tokens = self._flow.valid_tokens() or await self._first_read_async()
        if tokens is not None:
            return tokens
        return await self._run(self._resource.token_steps())  # type: ignore[no-any-return]

    def get_token(self) -> TokenSet:
        """:meth:`aget_token` for synchronous code: a valid stored token is read and returned
        in the caller's thread; the background event loop runs only a refresh or a login."""
        tokens = self._flow.valid_tokens() or self._first_read_sync()
        if tokens is not None:
            return tokens
        from ._portal import run_sync

        return run_sync(self.aget_token())

    async def alogin(self) -> TokenSet:
        """Run a fresh interactive login now and store the tokens."""
        return await self._run(self._resource.login_steps())  # type: ignore[no-any-return]

    def login(self) -> TokenSet:
        """:meth:`alogin` for synchronous code."""
        from ._portal import run_sync

        return run_sync(self.alogin())

    async def alogout(self, *, revoke: bool = True, forget_client: bool = False) -> LogoutResult:
        """Revoke the tokens where the server allows (RFC 7009) and forget them."""
        return await self._run(  # type: ignore[no-any-return]
            self._resource.logout_steps(revoke=revoke, forget_client=forget_client)
        )

    def logout(self, *, revoke: bool = True, forget_client: bool = False) -> LogoutResult:
        """:meth:`alogout` for synchronous code."""
        from ._portal import run_sync

        return run_sync(self.alogout(revoke=revoke, forget_client=forget_client))

    async def _run(self, steps: Steps) -> Any:
        """Run ``steps`` with the provider's own client (there is no caller's request)."""
        from .drive import run_async
        from .perform_async import AsyncPerformer

        context = self._context
        return await run_async(steps, lambda: AsyncPerformer(context, context.http.library()))

    # -- the first read of the store ------------------------------------------------------

    def _first_read_sync(self) -> TokenSet | None:
        """The stored tokens when they can be sent now, read on a client's first request (or
        the first :meth:`get_token`).

        A reconnect is one read and the request: no steps, no performer. The steps read the
        store again when these tokens cannot be sent (none, expired), as they always do.
        """
        if self._flow.record is None and not self._first_read_done:
            self._first_read_done = True  # nothing stored: the steps read it from now on
            store = self.store
            if store.never_suspends:
                record = run_blocking(lambda: store.get(self.server_url))
            else:
                record = on_portal(store.get(self.server_url))
            self._flow.adopt(record)
        return self._flow.valid_tokens()

    async def _first_read_async(self) -> TokenSet | None:
        """:meth:`_first_read_sync` for an async client."""
        if self._flow.record is None and not self._first_read_done:
            self._first_read_done = True
            self._flow.adopt(await self.store.get(self.server_url))
        return self._flow.valid_tokens()

    # -- the drivers ----------------------------------------------------------------------

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        resource = self._resource
        if not resource.covers(request.url):
            yield request
            return
        request.read()
        tokens = self._flow.valid_tokens() or self._first_read_sync()
        response = None
        if tokens is not None:  # the fast path: no effect, no performer
            resource.authorize(request, tokens)
            response = yield request
            if tokens.token_type == "DPoP":
                resource.note_nonce(response)
            if response.status_code not in (401, 403):
                return
        from .drive import drive_sync
        from .perform_sync import SyncPerformer

        context = self._context
        yield from drive_sync(
            resource.request_steps(request, tokens, response),
            request,
            lambda: SyncPerformer(context, context.http.library(request)),
        )

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        resource = self._resource
        if not resource.covers(request.url):
            yield request
            return
        await request.aread()
        tokens = self._flow.valid_tokens() or await self._first_read_async()
        response = None
        if tokens is not None:  # the fast path: no effect, no performer
            resource.authorize(request, tokens)
            response = yield request
            if tokens.token_type == "DPoP":
                resource.note_nonce(response)
            if response.status_code not in (401, 403):
                return
        from .drive import drive_async
        from .perform_async import AsyncPerformer

        context = self._context
        driven = drive_async(
            resource.request_steps(request, tokens, response),
            request,
            lambda: AsyncPerformer(context, context.http.library(request)),
        )
        try:  # ``yield from`` for an async generator: each request out, its response in
            item = await driven.asend(None)
            while True:
                item = await driven.asend((yield item))
        except StopAsyncIteration:
            return
        finally:
            await driven.aclose()

    # -- the login strategy ----------------------------------------------------------------

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
