"""The loopback socket a browser login listens on, bound before anything else (RFC 8252).

Binding first fixes the redirect URI, port included, before the client is registered, and
reports a taken port at once, with what to do about it. Only loopback addresses are bound
(never 0.0.0.0); a stored registration's loopback redirect URI keeps its port and spelling
run after run, and a port the user fixed wins over it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from urllib.parse import urlsplit, urlunsplit

from ..errors import AuthorizationError, ConfigurationError

__all__ = ["ListenTarget", "PortInUseError", "bind_redirect"]


class PortInUseError(AuthorizationError):
    """The fixed loopback port is taken, so the browser's answer could not be received there."""

    def __init__(self, message: str, *, port: int) -> None:
        super().__init__(message)
        self.port = port


def is_loopback_name(host: str | None) -> bool:
    """``localhost`` or a loopback address, as a redirect URI or a pasted answer names it."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ListenTarget:
    """Where to listen: from a loopback redirect URI, or a port of our own choosing."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        query: str,
        fixed_by: str | None,
        netloc: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.query = query
        self.fixed_by = fixed_by  # "registration", "port", or None for a free port
        self.netloc = netloc  # the redirect URI's own spelling, when it has one


def _loopback_target(redirect_uri: str) -> ListenTarget | None:
    """The listener for a stored ``http`` loopback redirect URI; None for any other URI."""
    parts = urlsplit(redirect_uri)
    if parts.scheme.lower() != "http" or parts.fragment or not is_loopback_name(parts.hostname):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or "127.0.0.1"
    bind = "127.0.0.1" if host.lower() == "localhost" else host
    return ListenTarget(
        bind,
        port or 0,
        parts.path or "/",
        parts.query,
        "registration" if port else None,
        parts.netloc if port else None,
    )


def _bind(target: ListenTarget) -> socket.socket:
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":  # SO_REUSEADDR there would let two listeners share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined,unused-ignore]
        else:  # rebind at once after an earlier run left the port in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((target.host, target.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        taken = exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), 10048)
        denied = exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", -1), 10013)
        if target.fixed_by == "registration":
            how = (
                "The stored client registration uses this port in its redirect URI. Stop the "
                "program using the port (perhaps another login still waiting), or log out "
                "(`mcp-client-auth logout <server>`) so the next login registers a new port."
            )
        else:
            how = (
                "Stop the program using the port (perhaps another login still waiting), or "
                "choose another port (redirect_port=... / BrowserLogin(port=...)), or leave the "
                "port unset to use a free one."
            )
        where = f"{target.host}:{target.port}"
        if taken or denied:
            what = "already in use" if taken else "not allowed for this user"
            raise PortInUseError(
                f"cannot receive the browser's sign-in answer: port {target.port} on "
                f"{target.host} is {what}. {how}",
                port=target.port,
            ) from None
        raise AuthorizationError(f"cannot listen on {where} for the sign-in answer: {exc}") from exc
    return sock


def bind_redirect(
    redirect_uri: str | None, *, port: int | None, redirect_port: int | None
) -> tuple[socket.socket, ListenTarget, str] | None:
    """A bound socket for ``redirect_uri`` (a loopback ``http`` URI), or for one of its own
    when there is none, with where it listens and the redirect URI to send; None for any
    other redirect URI, where there is nothing to listen on.

    ``port`` (the login's) or ``redirect_port`` (the provider's) fixes the port; both set and
    different is a :class:`ConfigurationError`. Without either, a stored registration's port
    is reused, else a free one is taken.
    """
    target = _loopback_target(redirect_uri) if redirect_uri else None
    if redirect_uri and target is None:
        return None
    if target is None or target.fixed_by is None:
        if port and redirect_port and port != redirect_port:
            raise ConfigurationError(
                f"two different loopback ports were configured: BrowserLogin(port="
                f"{port}) and redirect_port={redirect_port}; set only one"
            )
        chosen = port or redirect_port or 0
        fixed_by = "port" if chosen else None
        if target is None:
            target = ListenTarget("127.0.0.1", chosen, "/callback", "", fixed_by)
        else:
            target.port, target.fixed_by = chosen, fixed_by
    elif target.port in (port, redirect_port):
        # the stored client's port is also the one the user fixed (a second `login --port
        # N` through the same SSH tunnel): the user's port, for a browser elsewhere
        target.fixed_by = "port"
    sock = _bind(target)
    target.port = sock.getsockname()[1]
    if target.netloc is None:
        host = f"[{target.host}]" if ":" in target.host else target.host
        if redirect_uri:  # keep the stored spelling (localhost stays localhost)
            parts = urlsplit(redirect_uri)
            name = parts.hostname or host
            host = f"[{name}]" if ":" in name else name
        target.netloc = f"{host}:{target.port}"
    uri = urlunsplit(("http", target.netloc, target.path, target.query, ""))
    return sock, target, uri
