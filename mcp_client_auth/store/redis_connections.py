"""Redis connections for ``TokenStore.redis()``: one asyncio client per event loop, and URLs
that never show their password.

An asyncio client is bound to the loop it first ran on, and a provider uses its store from
several loops (the caller's, the sync driver's portal thread, one ``asyncio.run()`` after
another in a command-line tool), so :class:`RedisConnections` keeps one client, and one
:class:`~.redis_kv.RedisKeyValue` over it, per loop. The password of a Redis URL is never
printed: :func:`redact_url` replaces it in every description, repr, log line and error message.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio

from ..errors import StorageError
from .redis_kv import RedisKeyValue

__all__ = ["SCHEMES", "RedisConnections", "check_url", "redact_url", "redis_error"]

SCHEMES = ("redis", "rediss", "unix")


# --- URLs --------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` query field) as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at:
        name, colon, _password = user.partition(":")
        netloc = f"{name}:***@{host}" if colon else f"{name}@{host}"
    query = parts.query
    if query:
        fields = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in fields):
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in fields], safe="*"
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    text = f"{parts.scheme}://{netloc}{parts.path}"  # urlunsplit drops unix:///'s empty host
    text += f"?{query}" if query else ""
    return text + (f"#{parts.fragment}" if parts.fragment else "")


def check_url(url: str) -> None:
    """Refuse, with a clear message, a URL redis-py would not take (without echoing secrets)."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"not a Redis URL: {redact_url(url)!r}; expected redis://host:port/db, "
            "rediss://... (TLS) or unix:///path/to/socket"
        )


# --- one client per event loop -------------------------------------------------------------------


@dataclass
class _PerLoop:
    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: redis.asyncio.Redis
    kv: RedisKeyValue


class RedisConnections:
    """One redis-py asyncio client, and one :class:`RedisKeyValue` over it, per event loop.

    ``options`` go to ``redis.asyncio.Redis.from_url`` (TLS files, timeouts...). Clients of
    loops that were closed are dropped when the next one is made; :meth:`aclose` closes the
    current loop's.
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        check_url(url)
        self._url = url
        self.safe_url = redact_url(url)
        self._options: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            "socket_timeout": 10.0,
            **(options or {}),
            "decode_responses": True,  # str keys and values
        }
        self._per_loop: dict[int, _PerLoop] = {}
        self._lock = threading.Lock()

    def _current(self) -> _PerLoop:
        loop = asyncio.get_running_loop()
        entry = self._per_loop.get(id(loop))
        if entry is not None and entry.loop() is loop:
            return entry
        with self._lock:
            for ident, other in list(self._per_loop.items()):
                old = other.loop()
                if old is None or old.is_closed():
                    del self._per_loop[ident]  # its sockets go with it
            client = redis.asyncio.Redis.from_url(self._url, **self._options)
            entry = _PerLoop(weakref.ref(loop), client, RedisKeyValue(client))
            self._per_loop[id(loop)] = entry
        return entry

    @property
    def client(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop."""
        return self._current().client

    @property
    def kv(self) -> RedisKeyValue:
        """The plain key-value layer of the running event loop."""
        return self._current().kv

    def sync_client(self) -> redis.Redis:
        """A blocking client, for set-up code that runs before any event loop."""
        return redis.Redis.from_url(self._url, **self._options)

    async def aclose(self) -> None:
        """Close the running loop's client (the others close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._per_loop.pop(id(loop), None)
        if entry is not None and entry.loop() is loop:
            await entry.client.aclose()

    def __repr__(self) -> str:
        return f"RedisConnections({self.safe_url!r})"


def redis_error(action: str, where: str, exc: Exception) -> StorageError:
    return StorageError(
        f"could not {action} Redis at {where}: {exc or type(exc).__name__}; check that the "
        "server is running and reachable from this host, and its password"
    )
