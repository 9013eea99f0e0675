"""The client side of the hardening tests: a provider against a :class:`Hostile`, and checks.

``send`` makes one request to the protected resource through the provider, with httpx or
httpx2, sync or async, over ``MockTransport`` (nothing leaves the process); ``outcome`` does
the same and returns the error instead of raising it. ``assert_clean`` is the check every
failure must pass: a typed error whose message names the problem, and no secret in it.
"""

from __future__ import annotations

import asyncio
import re
import traceback
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import httpx2

from mcp_client_auth import MCPAuthError, OAuthClientProvider, TokenStore

from .hostile import Hostile

LIBS = {"httpx": httpx, "httpx2": httpx2}
COMBOS = ["httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async"]
# the library each provider made here sends its own requests with (see ``send``)
_OWN_LIBRARY: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def own_transport(servers: Hostile, combo: str = "httpx-sync") -> Any:
    """The ``transport=`` that sends a provider's own requests (discovery, token...) to the
    same servers, with the combo's library: what a client of the request's library does with
    the real servers."""
    return LIBS[combo.split("-")[0]].MockTransport(servers.handler)


def provider(
    servers: Hostile,
    store: TokenStore | None = None,
    *,
    login: Callable[[str], str] | None = None,
    combo: str = "httpx-sync",
    **kwargs: Any,
) -> OAuthClientProvider:
    """A provider for ``servers`` whose own requests go there with ``combo``'s library (pass
    the same ``combo`` to :func:`send`)."""
    kwargs.setdefault("transport", own_transport(servers, combo))
    auth = OAuthClientProvider(
        servers.resource,
        store=store if store is not None else TokenStore.memory(),
        login=login or servers.approve,
        **kwargs,
    )
    _OWN_LIBRARY[auth] = LIBS[combo.split("-")[0]]
    return auth


def send(
    servers: Hostile,
    auth: Any,
    *,
    combo: str = "httpx-sync",
    url: str | None = None,
    follow_redirects: bool = False,
) -> Any:
    """POST to the resource (or ``url``) through ``auth``; the response, or the error raised."""
    lib_name, mode = combo.split("-")
    lib = LIBS[lib_name]
    target = url or servers.resource
    payload = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    transport = lib.MockTransport(servers.handler)
    own = _OWN_LIBRARY.get(auth)
    assert own in (None, lib), f"make the provider with combo={combo!r} too"
    if mode == "sync":
        with lib.Client(transport=transport, auth=auth, follow_redirects=follow_redirects) as c:
            return c.post(target, json=payload)

    async def run() -> Any:
        async with lib.AsyncClient(
            transport=transport, auth=auth, follow_redirects=follow_redirects
        ) as c:
            return await c.post(target, json=payload)

    return asyncio.run(run())


def outcome(servers: Hostile, auth: Any, **kwargs: Any) -> Any:
    """Like :func:`send`, but returns the exception instead of raising it."""
    try:
        return send(servers, auth, **kwargs)
    except Exception as exc:  # the tests judge what it was
        return exc


def everything_said(error: BaseException) -> str:
    """All text an error can put in a log: str, repr, its chain and the formatted traceback."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *map(str, getattr(current, "args", ()))]
        for attr in ("error", "description"):
            value = getattr(current, attr, None)
            if isinstance(value, str):
                parts.append(value)
        current = current.__cause__ or current.__context__
    parts += traceback.format_exception(type(error), error, error.__traceback__)
    return "\n".join(parts)


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    return sorted(s for s in secrets if s and s in text)


def assert_clean(
    error: object,
    kind: type[MCPAuthError],
    pattern: str,
    secrets: Iterable[str] = (),
) -> MCPAuthError:
    """``error`` is a ``kind`` whose message matches ``pattern`` and holds none of ``secrets``."""
    assert isinstance(error, kind), f"expected {kind.__name__}, got {error!r}"
    message = str(error)
    assert re.search(pattern, message, re.I | re.S), f"{message!r} does not match {pattern!r}"
    assert not leaked(everything_said(error), secrets), leaked(everything_said(error), secrets)
    return error


def stored(store: TokenStore, servers: Hostile) -> Any:
    """The record the store holds for the resource (``None`` when absent)."""
    from mcp_client_auth._portal import run_sync

    return run_sync(store.get(servers.resource))
