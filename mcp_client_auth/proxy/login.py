"""How the proxy signs in: the browser, never the terminal, and only to a clean URL.

The host owns stdin (the protocol) and usually shows stderr only in a log, so the login
cannot ask for a pasted answer; it prints the URL on stderr (hosts keep it in their logs) and
opens the system browser. The URL comes from the authorization server's metadata: before it
reaches the browser opener (which may run a program) it must be a plain https URL, or http on
loopback, with nothing in it a shell or an opener could read as anything else.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from ..login.browser import BrowserLogin, BrowserLoginSession
from ..login.terminal import open_system_browser
from ..urls import is_loopback_host

logger = logging.getLogger("mcp_client_auth.proxy")


def is_clean_url(url: str, *, allow_http: bool = False) -> bool:
    """An https URL (or http to loopback, or any http with ``allow_http``) made of visible
    ASCII with no quotes, spaces or shell metacharacters outside what URLs use."""
    if not url.isascii() or not url.isprintable() or any(c in url for c in " \"'`\\<>{}|^$;"):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and (allow_http or is_loopback_host(host))


def checked_opener(url: str) -> bool:
    """The system browser, for a clean authorization URL only."""
    if not is_clean_url(url):
        logger.warning(
            "not opening the browser: the authorization URL is not a plain https address: %s",
            ascii(url[:200]),
        )
        return False
    return open_system_browser(url)


class ProxyLogin(BrowserLogin):
    """:class:`BrowserLogin` that never reads a pasted answer (stdin is the protocol) and
    never falls back to the device flow when no browser opens: its code would sit in a host's
    log while the host waits. The host gets an error naming the ``login`` command instead."""

    def _terminal_attached(self) -> bool:
        return False

    def device_flow_preferred(self, redirect_port: int | None = None) -> bool:
        return False

    async def start(
        self, *, redirect_uri: str | None, redirect_port: int | None
    ) -> BrowserLoginSession:
        session = await super().start(redirect_uri=redirect_uri, redirect_port=redirect_port)
        session.__class__ = _NoDeviceFallback
        return session


class _NoDeviceFallback(BrowserLoginSession):
    """A browser login session that never asks the flow for the device grant."""

    @property
    def device_flow_offered(self) -> bool:
        return False

    @device_flow_offered.setter
    def device_flow_offered(self, offered: bool) -> None:
        del offered
