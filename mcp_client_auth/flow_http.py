"""The flow's own HTTP requests (discovery, registration, token, revocation), sent by a client
that belongs to the provider.

Why not the caller's client, which the auth flow could hand its requests to: that client follows
redirects when its owner asked it to, and a 307 from a token endpoint would then re-send the
form (an authorization code and its PKCE verifier, or a refresh token) to whatever origin the
redirect names. Its network errors are also raised inside the library's send loop, where the
flow cannot turn them into errors that name the authorization server. The provider's client
follows no redirect of a POST and only same-origin redirects of a metadata GET, caps every body
while it streams in, and reports a dead network as the flow step's own typed error.

The client is made per flow run, with the same library (httpx or httpx2) as the request being
authorized, unless the provider was given a transport, whose library then decides. A transport
that serves only sync (or only async) clients serves the other kind of driver too: the driver
sends through it from a worker thread (or the sync portal's event loop).
"""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import Any

import httpx

from ._http_compat import TRANSPORT_ERRORS, httpx2
from .effects import HttpRequest, HttpResponse
from .errors import ConfigurationError
from .metadata import origin

__all__ = ["MAX_BODY", "FlowHttp", "send_async", "send_sync"]

MAX_BODY = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TIMEOUT = 30.0


class FlowHttp:
    """How the provider's own clients are made: TLS verification and an optional transport."""

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True, transport: Any = None):
        self.verify = verify
        self.transport = transport
        self._transport_library = _library_of_transport(transport)

    def library(self, request: Any = None) -> ModuleType:
        """The library of the given transport, else of ``request``, else httpx."""
        if self._transport_library is not None:
            return self._transport_library
        if request is not None and httpx2 is not None and isinstance(request, httpx2.Request):
            return httpx2  # type: ignore[no-any-return]
        return httpx

    def serves(self, library: ModuleType, *, asynchronous: bool) -> bool:
        """Whether a client of this kind can use the transport (always, without one)."""
        if self.transport is None:
            return True
        base = library.AsyncBaseTransport if asynchronous else library.BaseTransport
        return isinstance(self.transport, base)

    def sync_client(self, library: ModuleType) -> Any:
        return library.Client(**self._options())

    def async_client(self, library: ModuleType) -> Any:
        return library.AsyncClient(**self._options())

    def release_sync(self, client: Any) -> None:
        """Close a client made for one flow run; a transport the user gave stays open."""
        if self.transport is None:
            client.close()

    async def release_async(self, client: Any) -> None:
        if self.transport is None:
            await client.aclose()

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"timeout": TIMEOUT, "follow_redirects": False}
        if self.transport is not None:
            # the user's transport decides the network: no proxy or CA from the environment
            options.update(transport=self.transport, trust_env=False)
        else:
            options["verify"] = self.verify
        return options


def send_sync(client: Any, effect: HttpRequest) -> HttpResponse:
    """Send ``effect`` with a sync client; read at most 1 MiB of the answer."""
    response = _open_sync(client, effect, effect.url)
    for _ in range(MAX_REDIRECTS):
        location = _same_origin_redirect(effect, response)
        if location is None:
            break
        response.close()
        response = _open_sync(client, effect, location)
    try:
        body = _CappedBody(effect, response)
        for chunk in response.iter_bytes():
            body.add(chunk)
    except TRANSPORT_ERRORS as exc:
        raise _unreachable(effect, exc) from None
    finally:
        response.close()
    return body.effect_response()


def _open_sync(client: Any, effect: HttpRequest, url: str) -> Any:
    request = client.build_request(
        effect.method, url, headers=dict(effect.headers), content=effect.body
    )
    try:
        return client.send(request, stream=True)
    except TRANSPORT_ERRORS as exc:
        raise _unreachable(effect, exc) from None


async def send_async(client: Any, effect: HttpRequest) -> HttpResponse:
    """Send ``effect`` with an async client; read at most 1 MiB of the answer."""
    response = await _open_async(client, effect, effect.url)
    for _ in range(MAX_REDIRECTS):
        location = _same_origin_redirect(effect, response)
        if location is None:
            break
        await response.aclose()
        response = await _open_async(client, effect, location)
    try:
        body = _CappedBody(effect, response)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
    except TRANSPORT_ERRORS as exc:
        raise _unreachable(effect, exc) from None
    finally:
        await response.aclose()
    return body.effect_response()


async def _open_async(client: Any, effect: HttpRequest, url: str) -> Any:
    request = client.build_request(
        effect.method, url, headers=dict(effect.headers), content=effect.body
    )
    try:
        return await client.send(request, stream=True)
    except TRANSPORT_ERRORS as exc:
        raise _unreachable(effect, exc) from None


def _same_origin_redirect(effect: HttpRequest, response: Any) -> str | None:
    """Where a redirected metadata GET goes next, when it stays on its origin.

    A POST (token, registration, revocation) is never redirected: its form holds secrets. A GET
    redirected to another origin is not followed (:func:`_refuse_other_origin` says why).
    """
    target = _redirect_target(effect, response)
    return target if target is not None and origin(target) == origin(effect.url) else None


def _refuse_other_origin(effect: HttpRequest, response: Any) -> None:
    target = _redirect_target(effect, response)
    if target is not None and origin(target) != origin(effect.url):
        raise effect.error(
            f"the {effect.what} request to {effect.url} was redirected to another origin "
            f"({target}); refusing to follow it"
        )


def _redirect_target(effect: HttpRequest, response: Any) -> str | None:
    if effect.method != "GET" or response.status_code not in REDIRECT_STATUSES:
        return None
    location = response.headers.get("location")
    return str(response.url.join(location)) if location else None


def _library_of_transport(transport: Any) -> ModuleType | None:
    if transport is None:
        return None
    for library in (httpx, httpx2):
        if library is not None and isinstance(
            transport, (library.BaseTransport, library.AsyncBaseTransport)
        ):
            return library
    raise ConfigurationError(
        f"transport= must be an httpx or httpx2 transport, not {type(transport).__name__}"
    )


def _unreachable(effect: HttpRequest, exc: Exception) -> Exception:
    kept = " The stored tokens are kept; try again later." if effect.what == "token refresh" else ""
    return effect.error(f"could not reach {effect.url} for the {effect.what}: {exc}.{kept}")


class _CappedBody:
    """The answer to one flow request, refused once it passes 1 MiB (announced or streamed)."""

    def __init__(self, effect: HttpRequest, response: Any) -> None:
        _refuse_other_origin(effect, response)
        self.effect = effect
        self.response = response
        self.data = bytearray()
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > MAX_BODY:
            raise self._too_large()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > MAX_BODY:
            raise self._too_large()

    def _too_large(self) -> Exception:
        effect = self.effect
        return effect.error(
            f"the {effect.what} response from {effect.url} is larger than 1 MiB; refusing it"
        )

    def effect_response(self) -> HttpResponse:
        response = self.response
        return HttpResponse(
            status_code=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=bytes(self.data),
            url=str(response.url),
            challenges=tuple(response.headers.get_list("www-authenticate")),
        )
