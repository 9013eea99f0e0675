"""The protected resource's side of the provider, sans-IO: which requests carry the token, how
it is attached, and what to do with the resource's 401 and 403 answers.

The steps here are generators like the flow's: they yield the caller's request (to be sent by
the caller's client), the flow's effects, and the refresh lock as effects
(:class:`~.effects.AcquireLock`, :class:`~.effects.TryLock`, :class:`~.effects.ReleaseLock`);
the drivers in ``drive.py`` send the request and hand every effect to their performer. They
never touch the network, the store or the login, so sync and async clients of httpx and httpx2
all run the same steps.

Every change of the tokens happens with the refresh lock held, and after reading the store
again under it: a token another task or process just obtained is used, not fetched again. A
waiter re-reads the store between its tries at the lock and goes as soon as the holder has
stored a new token: it does not queue for a lock it no longer needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .effects import AcquireLock, ReleaseLock, TryLock
from .errors import AuthorizationError, DiscoveryError
from .flow import AuthFlow
from .server_json import server_nonce
from .server_text import clean_text
from .tokens import TokenSet
from .url_rules import normalized_path, path_is_under

if TYPE_CHECKING:
    # the challenges are parsed when the resource refuses a token, not on reconnect
    from .challenges import Challenge
    from .logout import LogoutResult

__all__ = ["MAX_AUTH_ROUNDS", "ResourceSide", "Steps"]

logger = logging.getLogger("mcp_client_auth")

MAX_AUTH_ROUNDS = 3  # re-authorizations for one request before giving up
JUDGED_PATHS = 256  # request paths whose verdict (token or not) is remembered

# What a step yields (the caller's request or an effect) and what it is sent back.
Steps = Generator[Any, Any, Any]


class Request(Protocol):  # what httpx.Request and httpx2.Request share, as used here
    @property
    def url(self) -> Any: ...
    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> Any: ...


class Response(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def request(self) -> Any: ...


def path_of(raw: bytes) -> str:
    """The path of an httpx or httpx2 URL's ``raw_path``: as it goes on the wire
    (percent-encoded), without the query."""
    return raw.partition(b"?")[0].decode("ascii", "replace") or "/"


def asks_for_nonce(challenges: Sequence[Challenge]) -> bool:
    return any(
        c.scheme.lower() == "dpop" and c.param("error") == "use_dpop_nonce" for c in challenges
    )


def challenges_of(response: Response) -> list[Challenge]:
    """The resource's WWW-Authenticate challenges; a malformed header counts as none."""
    values = response.headers.get_list("www-authenticate")
    if not values:
        return []
    from .challenges import parse_www_authenticate

    try:
        return parse_www_authenticate(values)
    except DiscoveryError as exc:  # quoting the header: what the request carried is cut out
        from .error_answers import header_secrets

        sent = header_secrets(response.request.headers)
        logger.warning(
            "ignoring a malformed WWW-Authenticate header: %s",
            clean_text(str(exc), secrets=sent),
        )
        return []


class ResourceSide:
    """The token's use at one protected resource, over the flow that obtains it."""

    def __init__(self, flow: AuthFlow, server_url: str, clock: Callable[[], float]) -> None:
        import httpx

        self.flow = flow
        self.server_url = server_url
        self._clock = clock
        url = httpx.URL(server_url)
        self._scheme = url.scheme
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._root = normalized_path(path_of(url.raw_path))
        # raw path (and query) -> covered: a client sends to a few paths, over and over
        self._judged: dict[bytes, bool] = {}

    # -- which requests get the token, and how --------------------------------------------

    def covers(self, url: Any) -> bool:
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
            covered = path_is_under(self._root, path_of(raw))
            if len(self._judged) >= JUDGED_PATHS:
                self._judged.clear()
            self._judged[raw] = covered
        return covered

    def authorize(self, request: Request, tokens: TokenSet) -> None:
        """Attach ``tokens``; a DPoP-bound token gets a fresh proof of its key (RFC 9449 7)."""
        request.headers["Authorization"] = tokens.authorization
        if tokens.token_type != "DPoP":
            return
        record = self.flow.record
        key = record.dpop_key if record is not None else None
        if key is not None:  # None only when a migration just dropped the key: a 401 follows
            request.headers["DPoP"] = key.proof(
                request.method,
                str(request.url),
                access_token=tokens.access_token,
                nonce=self.flow.resource_nonce(),
                now=self._clock(),
            )

    def reauthorize(self, request: Request, tokens: TokenSet) -> None:
        """:meth:`authorize` a request that was sent before (no stale proof left on it)."""
        request.headers.pop("DPoP", None)
        self.authorize(request, tokens)

    def note_nonce(self, response: Response) -> None:
        """Keep the resource's newest DPoP nonce (RFC 9449 9) for the next proofs."""
        nonce = server_nonce(response.headers.get("dpop-nonce"))
        if nonce:
            self.flow.note_resource_nonce(nonce)

    # -- the steps after the fast path ----------------------------------------------------

    def request_steps(
        self, request: Request, sent: TokenSet | None, response: Response | None
    ) -> Generator[Any, Any, None]:
        """One request to the resource after the fast path: ``response`` is the answer to
        ``sent`` (``None``: nothing sent yet, as no valid token was in memory)."""
        flow = self.flow
        if response is None:
            sent = yield from self._first_token()
            if sent is not None:
                self.authorize(request, sent)
            response = yield request
            if sent is not None and sent.dpop_bound:
                self.note_nonce(response)
        refreshed = False
        nonce_retried = False
        rounds = 0
        while True:
            assert response is not None
            status = response.status_code
            if status not in (401, 403):
                return
            from .challenges import Challenge, find_challenge  # a refusal: not on reconnect

            challenges = challenges_of(response)
            offers_dpop = any(c.scheme.lower() == "dpop" for c in challenges)
            if offers_dpop:
                flow.resource_offers_dpop = True
            if (
                status == 401
                and sent is not None
                and sent.dpop_bound
                and not nonce_retried
                and server_nonce(response.headers.get("dpop-nonce"))
                and asks_for_nonce(challenges)
            ):
                # RFC 9449 9: the resource wants its nonce in the proof; once per token
                nonce_retried = True
                self.note_nonce(response)
                self.reauthorize(request, sent)
                response = yield request
                self.note_nonce(response)
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
            yield AcquireLock()
            tokens = yield from flow.obtain(
                failed=sent,
                challenge=challenge or Challenge("Bearer", {}),
                allow_refresh=not refreshed,
                dpop_refused=bool(
                    status == 401
                    and sent is not None
                    and sent.dpop_bound
                    and challenges
                    and not offers_dpop
                ),
            )
            yield ReleaseLock()
            if tokens is None:
                return
            refreshed = refreshed or (
                sent is not None and tokens.access_token != sent.access_token and status == 401
            )
            if tokens != sent:
                nonce_retried = False
            sent = tokens
            self.reauthorize(request, tokens)
            response = yield request
            if tokens.dpop_bound:
                self.note_nonce(response)

    def _first_token(self) -> Generator[Any, Any, TokenSet | None]:
        """The token for a request sent with none valid in memory: stored, refreshed, or
        ``None`` (the request goes out bare, to learn the resource's challenge)."""
        flow = self.flow
        sent = None
        if flow.record is None:
            # First use: read the store without the lock (the lock guards changes, and a valid
            # stored token needs none), so a reconnect costs one read.
            yield from flow.load()
            sent = flow.valid_tokens()
        if sent is None:
            stale = flow.tokens  # read before waiting: whoever held the lock may replace it
            sent = yield from self.lock_or_fresh(stale)
            if sent is None:
                sent = yield from flow.obtain(failed=stale, challenge=None)
                yield ReleaseLock()
        return sent

    def lock_or_fresh(self, stale: TokenSet | None) -> Generator[Any, Any, TokenSet | None]:
        """Take the refresh lock (``None``), or return the valid token other than ``stale``
        that its holder stored while this one waited (without the lock: it is not needed).

        Between tries the store is read again: a waiter goes once the new token is stored,
        not when its turn at the lock comes, so N processes cost one refresh and N reads.
        """
        held = yield TryLock()
        while not held:
            fresh = self.flow.valid_tokens()
            if fresh is None or fresh == stale:
                yield from self.flow.load()
                fresh = self.flow.valid_tokens()
            if fresh is not None and fresh != stale:
                yield ReleaseLock()  # the in-process lock, and the wait for the store's
                return fresh
            held = yield TryLock()
        return None

    # -- without a request ----------------------------------------------------------------

    def token_steps(self) -> Generator[Any, Any, TokenSet]:
        """A valid token: stored, refreshed, or from a login (``get_token``)."""
        fresh = yield from self.lock_or_fresh(self.flow.tokens)
        if fresh is not None:
            return fresh
        tokens = yield from self.flow.obtain(failed=None, challenge=None)
        if tokens is None:
            tokens = yield from self.flow.authorize(None)
        yield ReleaseLock()
        return tokens

    def login_steps(self) -> Generator[Any, Any, TokenSet]:
        """A fresh interactive login, whatever is stored."""
        yield AcquireLock()
        yield from self.flow.load()
        tokens = yield from self.flow.authorize(None)
        yield ReleaseLock()
        return tokens

    def logout_steps(self, *, revoke: bool, forget_client: bool) -> Generator[Any, Any, Any]:
        yield AcquireLock()
        result: LogoutResult = yield from self.flow.logout(
            revoke=revoke, forget_client=forget_client
        )
        yield ReleaseLock()
        return result
