"""http(s) URLs split and put in canonical form, and which hosts are this machine.

The client decides from a URL where a token may go and under which key it is stored, so the
URL it decides on must be the URL it was given: whitespace, control, bidi and invisible
characters are refused rather than stripped, user information is refused, a numeric host must
be an IPv4 address written in full (``127.1`` reaches 127.0.0.1 too), and only what URL
semantics say is irrelevant is normalised (scheme and host case, the default port).
"""

from __future__ import annotations

import ipaddress
import string
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .server_text import bounded, has_unsafe_characters, quoted
from .values import Value, set_field

__all__ = [
    "SplitUrl",
    "canonical_resource_url",
    "is_loopback_host",
    "origin",
    "reaches_this_machine",
    "split_url",
    "usable_url",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")


class SplitUrl(Value):
    """An absolute http(s) URL in parts, scheme, host and port in canonical form.

    A :class:`~.values.Value`, not a frozen dataclass: on Python 3.11 a dataclass compiles each
    method it generates when its module is imported, a cost every reconnecting process would
    pay (the same holds for the other value types a reconnect makes)."""

    __slots__ = ("host", "path", "port", "query", "scheme")
    scheme: str
    host: str  # lowercased; an IPv6 literal keeps its brackets
    port: int | None  # None for the scheme's default port
    path: str
    query: str

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None,
        path: str,
        query: str,
    ) -> None:
        set_field(self, "scheme", scheme)
        set_field(self, "host", host)
        set_field(self, "port", port)
        set_field(self, "path", path)
        set_field(self, "query", query)

    @property
    def origin(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def split_url(url: object) -> SplitUrl:
    """Split an absolute http(s) URL, canonicalising scheme, host and port.

    Raises ValueError with a short reason. Whitespace and control characters are refused
    rather than silently stripped (as :func:`urllib.parse.urlsplit` would), so the URL we use
    is always the URL we were given.
    """
    if not isinstance(url, str):
        raise ValueError(f"expected a string, got {type(url).__name__}")
    if not url:
        raise ValueError("empty")
    if has_unsafe_characters(url):
        raise ValueError("contains whitespace or a control character, or a bidi or invisible one")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"unparsable: {bounded(str(exc))}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("not an absolute http or https URL")
    if not parts.netloc:
        raise ValueError("no host")
    if "@" in parts.netloc:
        raise ValueError("user information (user:password@) is not allowed")
    host, port = _split_netloc(parts.netloc)
    if port == _DEFAULT_PORTS[parts.scheme]:
        port = None
    return SplitUrl(parts.scheme, host, port, parts.path, parts.query)


def _split_netloc(netloc: str) -> tuple[str, int | None]:
    port_text: str | None
    if netloc.startswith("["):
        close = netloc.find("]")
        if close < 0:
            raise ValueError("unterminated IPv6 literal")
        literal, rest = netloc[1:close], netloc[close + 1 :]
        if "%" in literal:
            raise ValueError("IPv6 zone identifiers are not allowed")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise ValueError("invalid IPv6 literal") from None
        host = f"[{literal.lower()}]"
        if rest and not rest.startswith(":"):
            raise ValueError("unexpected text after the IPv6 literal")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = netloc.rpartition(":")
        if not colon:
            host, port_text = netloc, None
        if not host:
            raise ValueError("no host")
        host = host.lower()
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError("invalid internationalised host name") from None
        if not set(host) <= _HOST_CHARS:
            raise ValueError("invalid character in the host")
        if _ends_in_a_number(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(
                    "a numeric host must be an IPv4 address written in full (a.b.c.d)"
                ) from None
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError("invalid port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    return host, port


def _ends_in_a_number(host: str) -> bool:
    """Whether ``host`` is an IPv4 address to a browser or the system resolver (WHATWG URL: a
    host whose last label is a number): ``127.1``, ``0x7f.1`` and ``2130706433`` all reach
    127.0.0.1, so only the one unambiguous spelling is accepted."""
    last = host.rstrip(".").rpartition(".")[2]
    if last.isdigit():
        return True
    return last.startswith("0x") and all(char in string.hexdigits for char in last[2:])


def canonical_resource_url(url: str) -> str:
    """The canonical form of a protected resource URL (RFC 8707, MCP authorization).

    Tokens are stored under this form and sent as the ``resource`` parameter, so two spellings
    of one server (``HTTPS://Example.com:443/mcp`` and ``https://example.com/mcp``) share one
    login. Only what URL semantics say is irrelevant changes: scheme and host case, the default
    port, the fragment. The path is kept exactly: ``/mcp`` and ``/mcp/`` may be different
    resources.
    """
    try:
        parts = split_url(url)
    except ValueError as exc:
        raise ConfigurationError(
            f"not a usable resource URL ({exc}): {quoted(url)}; "
            "expected an absolute http:// or https:// URL such as https://example.com/mcp"
        ) from None
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.origin}{parts.path}{query}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, canonicalised as in :func:`canonical_resource_url`."""
    return usable_url(url).origin


def usable_url(url: str) -> SplitUrl:
    """:func:`split_url` for a URL the caller relies on: :class:`ConfigurationError` when it
    cannot be used."""
    try:
        return split_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"not a usable URL ({exc}): {quoted(url)}") from None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine: 127.0.0.0/8, ::1 (bracketed or not), localhost.

    OAuth 2.1 allows plain http only for loopback, where nothing crosses a network.
    """
    if not isinstance(host, str):
        return False
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def reaches_this_machine(host: str) -> bool:
    """Whether a connection to ``host`` ends on this machine, in any spelling a server could
    use: loopback (127.0.0.0/8, ::1, also IPv4-mapped or -compatible), the unspecified
    address (0.0.0.0/8 and ``::`` connect to the local host), ``localhost`` and its subdomains
    (RFC 6761), each with or without a trailing dot. A name that merely resolves to loopback
    (a DNS record) cannot be told without a lookup, which this pure check does not make.
    """
    if not isinstance(host, str):
        return False
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    name = name.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d, IPv4-compatible
            address = ipaddress.IPv4Address(int(address))
    if isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK:
        return True
    return address.is_loopback or address.is_unspecified


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
