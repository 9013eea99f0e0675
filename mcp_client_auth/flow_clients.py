"""How the provider's own clients are made: the library, TLS verification, an optional
transport of the user's.

Apart from :mod:`.flow_http`, which sends through them, so that a provider is made (and a
stored token used) without loading the sending code: a process that reconnects with a valid
token sends nothing of its own.
"""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import Any

import httpx

from ._http_compat import libraries, loaded_httpx2
from .errors import ConfigurationError

__all__ = ["TIMEOUT", "FlowHttp"]

TIMEOUT = 30.0  # seconds any one connect, read or write may wait


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
        httpx2 = loaded_httpx2()
        if request is not None and httpx2 is not None and isinstance(request, httpx2.Request):
            return httpx2
        return httpx

    def serves(self, library: ModuleType, *, asynchronous: bool) -> bool:
        """Whether a client of this kind can use the transport (always, without one)."""
        if self.transport is None:
            return True
        base = library.AsyncBaseTransport if asynchronous else library.BaseTransport
        return isinstance(self.transport, base)

    def sync_client(self, library: ModuleType, url: str) -> Any:
        """A sync client for the run's requests to URLs like ``url`` (see :meth:`kind_of`)."""
        return library.Client(**self._options(library, url))

    def async_client(self, library: ModuleType, url: str) -> Any:
        return library.AsyncClient(**self._options(library, url))

    def client_for(
        self, clients: dict[bool, Any], library: ModuleType, url: str, *, asynchronous: bool
    ) -> Any:
        """The client of a run (``clients``, by :meth:`kind_of`) for ``url``, made on first
        use: sync or async, of ``library``."""
        kind = self.kind_of(url)
        client = clients.get(kind)
        if client is None:
            make = self.async_client if asynchronous else self.sync_client
            client = clients[kind] = make(library, url)
        return client

    def kind_of(self, url: str) -> bool:
        """Which of a run's clients sends to ``url``: requests that need the same TLS context
        share one (:mod:`.tls_contexts`: a plain-http URL gets one that loads no CA)."""
        from .tls_contexts import loads_cas_for  # here: a reconnect makes no client

        return self.transport is None and loads_cas_for(url, self.verify)

    def release_sync(self, client: Any) -> None:
        """Close a client made for one flow run; a transport the user gave stays open."""
        if self.transport is None:
            client.close()

    async def release_async(self, client: Any) -> None:
        if self.transport is None:
            await client.aclose()

    def _options(self, library: ModuleType, url: str) -> dict[str, Any]:
        options: dict[str, Any] = {"timeout": TIMEOUT, "follow_redirects": False}
        if self.transport is not None:
            # the user's transport decides the network: no proxy or CA from the environment
            options.update(transport=self.transport, trust_env=False)
        else:
            from .tls_contexts import context_for

            options["verify"] = context_for(url, self.verify, library)
        return options


def _library_of_transport(transport: Any) -> ModuleType | None:
    if transport is None:
        return None
    for library in libraries():
        if isinstance(transport, (library.BaseTransport, library.AsyncBaseTransport)):
            return library
    raise ConfigurationError(
        f"transport= must be an httpx or httpx2 transport, not {type(transport).__name__}"
    )
