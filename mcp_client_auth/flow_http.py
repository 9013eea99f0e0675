"""The flow's own HTTP requests (discovery, registration, token, revocation), sent by a client
that belongs to the provider.

Why not the caller's client, which the auth flow could hand its requests to: that client follows
redirects when its owner asked it to, and a 307 from a token endpoint would then re-send the
form (an authorization code and its PKCE verifier, or a refresh token) to whatever origin the
redirect names. Its network errors are also raised inside the library's send loop, where the
flow cannot turn them into errors that name the authorization server. The provider's client
follows no redirect of a POST and only same-origin redirects of a metadata GET, caps every body
while it streams in, and reports a dead network as the flow step's own typed error.

A server can also hold the flow without ever failing: each read within the read timeout
(:data:`TIMEOUT`), it can trickle a byte at a time for hours, or send a little gzip that
inflates to gigabytes. So every request has a total deadline (:data:`DEADLINE`, connect to
last byte), and the body is read raw and inflated a bounded piece at a time, never past the
cap (:data:`MAX_BODY`, :mod:`.capped_body`): only gzip and deflate are asked for and accepted.

The clients (:mod:`.flow_clients`) are made per flow run, on first use, with the same library
(httpx or httpx2) as the request being authorized, unless the provider was given a transport,
whose library then decides; a sync driver sends with a sync client, an async one with an async
client. A run's requests to plain-http URLs and to https ones use two clients, so that no CA
bundle is loaded for a run that needs none (:mod:`.tls_contexts`). A transport that serves only
sync (or only async) clients serves the other kind of driver too: the driver sends through it
from a worker thread (or the sync portal's event loop).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._http_compat import libraries, timeout_errors, transport_errors
from .deadline_watch import DeadlinePassed, sockets_of, within
from .effects import HttpRequest, HttpResponse
from .error_answers import sent_secrets
from .flow_clients import TIMEOUT
from .server_text import clean_text
from .urls import origin

if TYPE_CHECKING:
    from .capped_body import CappedBody

__all__ = ["DEADLINE", "MAX_BODY", "TIMEOUT", "send_async", "send_sync"]

MAX_BODY = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEADLINE = 60.0  # seconds one flow request may take in all, redirects and body included
ACCEPT_ENCODING = "gzip, deflate"  # what capped_body.Decoder can inflate within the cap


def send_sync(client: Any, effect: HttpRequest) -> HttpResponse:
    """Send ``effect`` with a sync client: at most :data:`MAX_BODY` of answer, within
    :data:`DEADLINE`.

    The exchange runs in a worker thread that the caller stops waiting for at the deadline,
    the client's sockets then shut down (:mod:`.deadline_watch`): resolving, connecting,
    a trickled head or body, a kept-alive connection reused, all end there. A transport of the
    user's that does not report its sockets through ``trace`` still ends the wait at the
    deadline; its read then ends at its own timeout.
    """
    deadline = _Deadline(effect)
    sockets = sockets_of(client)

    def exchange() -> HttpResponse:
        return _exchange_sync(client, effect, deadline, {"trace": sockets.trace})

    try:
        return within(deadline.remaining(), sockets, exchange)
    except DeadlinePassed:
        raise deadline.error() from None


def _exchange_sync(
    client: Any, effect: HttpRequest, deadline: _Deadline, extensions: dict[str, Any]
) -> HttpResponse:
    response = _open_sync(client, effect, effect.url, deadline, extensions)
    try:
        for _ in range(MAX_REDIRECTS):
            location = _same_origin_redirect(effect, response)
            if location is None:
                break
            response.close()
            response = _open_sync(client, effect, location, deadline, extensions)
        body = _body_of(effect, response)
        if response.is_stream_consumed:  # a mock transport's answer, read when it was made
            body.add_decoded(response.content)
        else:
            for chunk in response.iter_raw():
                deadline.check()
                body.add(chunk)
        return body.effect_response()
    except transport_errors() as exc:
        raise deadline.failure(exc) from None
    finally:
        response.close()


def _open_sync(
    client: Any, effect: HttpRequest, url: str, deadline: _Deadline, extensions: dict[str, Any]
) -> Any:
    deadline.check()
    request = _build_request(client, effect, url, timeout=deadline.wait(), extensions=extensions)
    try:
        return client.send(request, stream=True)
    except transport_errors() as exc:
        raise deadline.failure(exc) from None


async def send_async(client: Any, effect: HttpRequest) -> HttpResponse:
    """Send ``effect`` with an async client: at most :data:`MAX_BODY` of answer, within
    :data:`DEADLINE`.

    The whole exchange (connect, headers, redirects, body) runs in one cancel scope; anyio's,
    so the deadline holds under asyncio and trio alike.
    """
    import anyio  # here, not at import: a process that only reconnects sends nothing itself

    deadline = _Deadline(effect)
    with anyio.move_on_after(deadline.remaining()):
        return await _exchange_async(client, effect, deadline)
    raise deadline.error()


async def _exchange_async(client: Any, effect: HttpRequest, deadline: _Deadline) -> HttpResponse:
    response = await _open_async(client, effect, effect.url, deadline)
    try:
        for _ in range(MAX_REDIRECTS):
            location = _same_origin_redirect(effect, response)
            if location is None:
                break
            await _close_async(response)
            response = await _open_async(client, effect, location, deadline)
        body = _body_of(effect, response)
        if response.is_stream_consumed:  # a mock transport's answer, read when it was made
            body.add_decoded(response.content)
        else:
            async for chunk in response.aiter_raw():
                body.add(chunk)
        return body.effect_response()
    except transport_errors() as exc:
        raise deadline.failure(exc) from None
    finally:
        await _close_async(response)


async def _open_async(client: Any, effect: HttpRequest, url: str, deadline: _Deadline) -> Any:
    request = _build_request(client, effect, url)
    try:
        return await client.send(request, stream=True)
    except transport_errors() as exc:
        raise deadline.failure(exc) from None


async def _close_async(response: Any) -> None:
    """Close ``response`` even when the deadline has cancelled the scope around it."""
    import anyio

    with anyio.CancelScope(shield=True):
        await response.aclose()


def _build_request(client: Any, effect: HttpRequest, url: str, **options: Any) -> Any:
    """The library's request for ``effect`` sent to ``url``, or the effect's typed error.

    Server text decides the URL and some headers (an endpoint, a redirect, a registration's
    token), and a URL can pass :class:`~.metadata.UrlRules` yet be one httpx will not build a
    request for (too long, a host IDNA refuses, a port out of range): that is the server's
    fault, said as the flow step's error, never a raw ``InvalidURL`` or ``idna`` error.
    """
    try:
        return client.build_request(
            effect.method, url, headers=_headers(effect), content=effect.body, **options
        )
    except _unbuildable_errors() as exc:
        raise _unsendable(effect, url, exc) from None


def _unbuildable_errors() -> tuple[type[Exception], ...]:
    """What a library raises for a URL or header it cannot make a request of: its
    ``InvalidURL``, and ``ValueError`` (idna's errors, a header that is not ASCII)."""
    return (*(library.InvalidURL for library in libraries()), ValueError)


def _unsendable(effect: HttpRequest, url: str, exc: Exception) -> Exception:
    reason = _reason(effect, exc) or type(exc).__name__
    return effect.error(
        f"could not send the {effect.what} request to {_shown(effect, url)}, a URL or header "
        f"the server gave that no request can be made of: {reason}"
    )


def _shown(effect: HttpRequest, url: str) -> str:
    """A URL for a message: the server's text, so cleaned and bounded."""
    return clean_text(url, 200, secrets=sent_secrets(effect))


def _reason(effect: HttpRequest, exc: Exception) -> str:
    """The library's text for ``exc``, which may quote what the server sent (a URL) or what
    the request carries (a header's credentials): cleaned, the request's secrets cut out."""
    return clean_text(str(exc), 300, secrets=sent_secrets(effect))


def _headers(effect: HttpRequest) -> dict[str, str]:
    """The request's headers, asking only for the encodings :class:`~.capped_body.Decoder`
    can cap."""
    headers = {k: v for k, v in effect.headers.items() if k.lower() != "accept-encoding"}
    headers["Accept-Encoding"] = ACCEPT_ENCODING
    return headers


def _same_origin_redirect(effect: HttpRequest, response: Any) -> str | None:
    """Where a redirected metadata GET goes next, when it stays on its origin.

    A POST (token, registration, revocation) is never redirected: its form holds secrets. A GET
    redirected to another origin is not followed (:func:`_refuse_other_origin` says why).
    """
    target = _redirect_target(effect, response)
    return target if target is not None and origin(target) == origin(effect.url) else None


def _body_of(effect: HttpRequest, response: Any) -> CappedBody:
    """The capped body of the final answer, once it is known not to be a redirect elsewhere."""
    from .capped_body import CappedBody  # here: a process that only reconnects reads none

    _refuse_other_origin(effect, response)
    return CappedBody(effect, response, limit=MAX_BODY)


def _refuse_other_origin(effect: HttpRequest, response: Any) -> None:
    target = _redirect_target(effect, response)
    if target is not None and origin(target) != origin(effect.url):
        raise effect.error(
            f"the {effect.what} request to {effect.url} was redirected to another origin "
            f"({target}); refusing to follow it"
        )


def _redirect_target(effect: HttpRequest, response: Any) -> str | None:
    """Where a redirected GET points, checked to be a URL with an origin: a ``Location`` that
    cannot be joined or has no usable origin is the server's error, not the user's."""
    if effect.method != "GET" or response.status_code not in REDIRECT_STATUSES:
        return None
    location = response.headers.get("location")
    if not location:
        return None
    try:
        target = str(response.url.join(location))
        origin(target)
    except _unbuildable_errors() as exc:  # origin's ConfigurationError is a ValueError
        raise effect.error(
            f"the {effect.what} request to {_shown(effect, effect.url)} was redirected to an "
            f"unusable Location {_shown(effect, location)}: {_reason(effect, exc)}"
        ) from None
    return target


def _unreachable(effect: HttpRequest, exc: Exception) -> Exception:
    reason = _reason(effect, exc)
    if not reason.strip():  # httpx.ReadError(""): a pooled connection the server dropped
        reason = _WITHOUT_TEXT.get(type(exc).__name__, type(exc).__name__)
    return effect.error(
        f"could not reach {_shown(effect, effect.url)} for the {effect.what}: "
        f"{reason}.{_kept(effect)}"
    )


#: What a transport error that carries no text of its own means, by its httpx class name (the
#: same names in httpx and httpx2), so the message still says what went wrong.
_WITHOUT_TEXT = {
    "ReadError": "the connection was closed while reading the answer",
    "WriteError": "the connection was closed while sending the request",
    "ConnectError": "the connection could not be made",
    "RemoteProtocolError": "the server broke the HTTP protocol",
}


def _kept(effect: HttpRequest) -> str:
    """A failed refresh changed nothing: the user should hear that, and that it may pass."""
    return " The stored tokens are kept; try again later." if effect.what == "token refresh" else ""


class _Deadline:
    """The moment one flow request must be done by, :data:`DEADLINE` after it starts."""

    def __init__(self, effect: HttpRequest) -> None:
        self.effect = effect
        # a request may be given less (a device poll: what is left of the login's timeout)
        self.limit = DEADLINE if effect.timeout is None else max(0.0, min(DEADLINE, effect.timeout))
        self.end = time.monotonic() + self.limit
        self.clipped = False  # the last wait handed to the client was cut short by the deadline

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def wait(self) -> float:
        """The longest one connect or read of the next sync request may wait."""
        wait = min(TIMEOUT, self.remaining())
        self.clipped = wait < TIMEOUT
        return wait

    def check(self) -> None:
        if time.monotonic() >= self.end:
            raise self.error()

    def failure(self, exc: Exception) -> Exception:
        """The typed error for a transport error: a timeout the deadline cut short, or any
        error that ended past it (a read the deadline's watch cut off, a body read that waited
        up to ``TIMEOUT``), is the deadline."""
        if time.monotonic() >= self.end or (isinstance(exc, timeout_errors()) and self.clipped):
            return self.error()
        return _unreachable(self.effect, exc)

    def error(self) -> Exception:
        effect = self.effect
        return effect.error(
            f"{effect.url} did not answer the {effect.what} within {self.limit:g} s.{_kept(effect)}"
        )
