"""Metadata documents, ``WWW-Authenticate`` challenges and the URL rules of MCP authorization.

Everything here is a pure function of its arguments: no network, no disk, no clock. Discovery
and the flow decide *which* document to fetch and *when*; this module decides what a header or
a document means and whether it can be trusted. Keeping that judgement free of I/O lets every
hostile or broken input be tested directly, and keeps one place that says what "valid" means.

The rules come from RFC 9110 section 11 (challenges), RFC 9728 (protected resource metadata),
RFC 8414 and OpenID Connect Discovery (authorization server metadata), RFC 8707 (resource
indicators) and the MCP authorization specification (discovery order, fallbacks).
"""

from __future__ import annotations

import ipaddress
import os
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import unquote_to_bytes, urlsplit

from .errors import ConfigurationError, DiscoveryError
from .untrusted import (
    MAX_DOCUMENT_BYTES,
    clean_text,
    has_unsafe_characters,
    json_type,
    parse_json,
    quoted,
)

__all__ = [
    "INSECURE_HTTP_ENV",
    "MAX_CHALLENGE_HEADER_BYTES",
    "MAX_DOCUMENT_BYTES",
    "Challenge",
    "UrlRules",
    "authorization_server_metadata_urls",
    "canonical_resource_url",
    "clean_text",
    "fallback_server_metadata",
    "find_challenge",
    "insecure_http_allowed",
    "is_loopback_host",
    "normalized_path",
    "origin",
    "parse_json_document",
    "parse_www_authenticate",
    "path_covers",
    "path_is_under",
    "protected_resource_metadata_urls",
    "reaches_this_machine",
    "require_secure_setting",
    "require_secure_url",
    "resource_covers",
    "secure_resource_url",
    "validate_resource_metadata",
    "validate_server_metadata",
]

#: The largest total size of the ``WWW-Authenticate`` values we parse, for the same reason.
MAX_CHALLENGE_HEADER_BYTES = 16 * 1024

PROTECTED_RESOURCE_WELL_KNOWN = "/.well-known/oauth-protected-resource"
OAUTH_SERVER_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OPENID_WELL_KNOWN = "/.well-known/openid-configuration"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_SHOWN = 200


def _show(value: object) -> str:
    """A value for an error message: quoted (no control characters reach a log) and bounded."""
    return quoted(value, _MAX_SHOWN)


def _cut(text: str) -> str:
    """``text`` bounded for an error message, unquoted: for a URL that :func:`_split_url` has
    accepted (so without whitespace, control, bidi or invisible characters), which reads best
    as itself, and for a reason text that may quote a server's value. A server chooses the
    length of both, and every log line that prints the error carries it."""
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


# --------------------------------------------------------------------------------------------
# WWW-Authenticate (RFC 9110 section 11.6.1)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Challenge:
    """One authentication challenge from a ``WWW-Authenticate`` header.

    ``params`` is read-only and keyed by lowercased names, because RFC 9110 makes auth-param
    names case-insensitive; ``scheme`` keeps the server's spelling so messages can quote it.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __post_init__(self) -> None:
        # Normalise here too, so a Challenge built by hand (in a test, or by a caller) obeys
        # the same lookup rules as a parsed one; the first of a repeated name wins.
        normalised: dict[str, str] = {}
        for name, value in self.params.items():
            normalised.setdefault(name.lower(), value)
        object.__setattr__(self, "params", MappingProxyType(normalised))

    def __hash__(self) -> int:
        return hash((self.scheme, frozenset(self.params.items()), self.token68))

    def param(self, name: str) -> str | None:
        """The value of auth-param ``name`` (case-insensitive), or None when absent."""
        return self.params.get(name.lower())

    def __repr__(self) -> str:
        return (
            f"Challenge(scheme={self.scheme!r}, params={dict(self.params)!r}, "
            f"token68={self.token68!r})"
        )


_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_TOKEN68_CHAR = frozenset("-._~+/" + string.ascii_letters + string.digits)
_OWS = frozenset(" \t")
_LIST_SEPARATOR = frozenset(" \t,")


class _ChallengeScanner:
    """A single forward pass over one header value.

    Every method moves ``pos`` forward or looks ahead by a bounded amount that the next step
    consumes, so a value is parsed in linear time whatever it contains.
    """

    __slots__ = ("end", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)

    def fail(self, problem: str) -> NoReturn:
        near = self.text[self.pos : self.pos + 24]
        raise DiscoveryError(
            f"malformed WWW-Authenticate header: {problem} at character {self.pos}"
            + (f" (near {near!r})" if near else "")
        )

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def skip(self, chars: frozenset[str]) -> bool:
        start = self.pos
        while self.pos < self.end and self.text[self.pos] in chars:
            self.pos += 1
        return self.pos > start

    def _skip_from(self, i: int, chars: frozenset[str]) -> int:
        while i < self.end and self.text[i] in chars:
            i += 1
        return i

    def read_token(self, what: str) -> str:
        start = self.pos
        self.skip(_TCHAR)
        if self.pos == start:
            self.fail(f"expected {what}")
        return self.text[start : self.pos]

    def param_ahead(self) -> bool:
        """Whether an auth-param (``name BWS = BWS value``) starts here.

        This is what tells a further parameter of the current challenge from the scheme of the
        next challenge after a comma, and a parameter list from a token68 (which may end in
        ``=`` but is never followed by a value).
        """
        i = self._skip_from(self.pos, _TCHAR)
        if i == self.pos:
            return False
        i = self._skip_from(i, _OWS)
        if i >= self.end or self.text[i] != "=":
            return False
        i = self._skip_from(i + 1, _OWS)
        return i < self.end and (self.text[i] in _TCHAR or self.text[i] == '"')

    def read_param(self) -> tuple[str, str]:
        name = self.read_token("an auth-param name")
        self.skip(_OWS)
        if self.peek() != "=":
            self.fail("expected '=' after an auth-param name")
        self.pos += 1
        self.skip(_OWS)
        if self.peek() == '"':
            return name, self.read_quoted()
        return name, self.read_token("an auth-param value")

    def read_quoted(self) -> str:
        opening = self.pos
        self.pos += 1  # the opening quote
        pieces: list[str] = []
        text, end = self.text, self.end
        run_start = self.pos
        while self.pos < end:
            char = text[self.pos]
            if char == '"':
                pieces.append(text[run_start : self.pos])
                self.pos += 1
                return "".join(pieces)
            if char == "\\":
                pieces.append(text[run_start : self.pos])
                if self.pos + 1 >= end:
                    break
                escaped = text[self.pos + 1]
                if _is_control(escaped):
                    self.pos += 1
                    self.fail("control character escaped in a quoted string")
                pieces.append(escaped)
                self.pos += 2
                run_start = self.pos
                continue
            if _is_control(char):
                self.fail("control character in a quoted string")
            self.pos += 1
        self.pos = opening
        self.fail("unterminated quoted string")

    def read_token68(self) -> str:
        start = self.pos
        self.skip(_TOKEN68_CHAR)
        if self.pos == start:
            self.fail("expected a token68 or an auth-param after the auth-scheme")
        while self.peek() == "=":
            self.pos += 1
        return self.text[start : self.pos]

    def read_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        while True:
            name, value = self.read_param()
            params.setdefault(name.lower(), value)  # a repeated name keeps its first value
            self.skip(_OWS)
            if self.done:
                return params
            if self.peek() != ",":
                self.fail("expected ',' after an auth-param")
            self.skip(_LIST_SEPARATOR)
            if self.done or not self.param_ahead():
                return params  # the next element, if any, starts a new challenge

    def parse(self, out: list[Challenge]) -> None:
        while True:
            self.skip(_LIST_SEPARATOR)  # empty list elements are allowed (RFC 9110 5.6.1)
            if self.done:
                return
            scheme = self.read_token("an auth-scheme")
            spaced = self.skip(_OWS)
            if self.done:
                out.append(Challenge(scheme))
                return
            if self.peek() == ",":
                # Either the challenge ends here, or empty list elements come before its first
                # auth-param ("Bearer , realm=x"): an auth-param cannot begin a challenge, so
                # one found after the commas can only belong to this scheme.
                self.skip(_LIST_SEPARATOR)
                if self.done or not self.param_ahead():
                    out.append(Challenge(scheme))
                    continue
                out.append(Challenge(scheme, self.read_params()))
                continue
            if not spaced:
                self.fail(f"unexpected character after the auth-scheme {scheme!r}")
            if self.param_ahead():
                out.append(Challenge(scheme, self.read_params()))
                continue
            token68 = self.read_token68()
            self.skip(_OWS)
            if not self.done and self.peek() != ",":
                self.fail("unexpected character after a token68")
            out.append(Challenge(scheme, token68=token68))


def _is_control(char: str) -> bool:
    return (char < " " and char != "\t") or char == "\x7f"


def parse_www_authenticate(headers: str | Sequence[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` values into challenges, in order.

    ``headers`` is one header value or all of them (a server may send several header lines,
    and several challenges in one line). Anything that does not follow the RFC 9110 grammar
    raises :class:`DiscoveryError` naming the problem, so a caller never acts on half a header.
    """
    values = [headers] if isinstance(headers, str) else headers
    try:
        values = list(values)
    except TypeError:
        raise DiscoveryError("WWW-Authenticate: expected a string or a list of strings") from None
    total = 0
    for value in values:
        if not isinstance(value, str):
            raise DiscoveryError(
                f"WWW-Authenticate: expected header values as strings, got {type(value).__name__}"
            )
        # len() first (a character is at least one byte): a huge value is refused unencoded.
        if len(value) <= MAX_CHALLENGE_HEADER_BYTES:
            total += len(value.encode("utf-8", "surrogatepass"))
        if len(value) > MAX_CHALLENGE_HEADER_BYTES or total > MAX_CHALLENGE_HEADER_BYTES:
            raise DiscoveryError(
                f"WWW-Authenticate header is larger than {MAX_CHALLENGE_HEADER_BYTES} bytes"
            )
    challenges: list[Challenge] = []
    for value in values:
        _ChallengeScanner(value).parse(challenges)
    return challenges


def find_challenge(
    challenges: Sequence[Challenge], schemes: Sequence[str] = ("bearer", "dpop")
) -> Challenge | None:
    """The first challenge whose scheme is one of ``schemes`` (case-insensitive).

    The server's order is kept because RFC 9110 leaves preference to the server's listing.
    """
    if isinstance(schemes, str):  # find_challenge(cs, "bearer") means one scheme, not letters
        schemes = (schemes,)
    wanted = {scheme.lower() for scheme in schemes}
    for challenge in challenges:
        if challenge.scheme.lower() in wanted:
            return challenge
    return None


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------

_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")


@dataclass(frozen=True)
class _URL:
    scheme: str
    host: str  # lowercased; an IPv6 literal keeps its brackets
    port: int | None  # None for the scheme's default port
    path: str
    query: str

    @property
    def origin(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def _split_url(url: object) -> _URL:
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
        raise ValueError(f"unparsable: {_cut(str(exc))}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("not an absolute http or https URL")
    if not parts.netloc:
        raise ValueError("no host")
    if "@" in parts.netloc:
        raise ValueError("user information (user:password@) is not allowed")
    host, port = _split_netloc(parts.netloc)
    if port == _DEFAULT_PORTS[parts.scheme]:
        port = None
    return _URL(parts.scheme, host, port, parts.path, parts.query)


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
        parts = _split_url(url)
    except ValueError as exc:
        raise ConfigurationError(
            f"not a usable resource URL ({exc}): {_show(url)}; "
            "expected an absolute http:// or https:// URL such as https://example.com/mcp"
        ) from None
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.origin}{parts.path}{query}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, canonicalised as in :func:`canonical_resource_url`."""
    try:
        return _split_url(url).origin
    except ValueError as exc:
        raise ConfigurationError(f"not a usable URL ({exc}): {_show(url)}") from None


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

#: The environment variable that allows plain http off loopback (``1``, ``true`` or ``yes``),
#: as the ``allow_insecure_http=True`` keyword does: for development only.
INSECURE_HTTP_ENV = "MCP_CLIENT_AUTH_INSECURE_HTTP"

_OPT_IN = (
    f"for development only, allow it with allow_insecure_http=True, {INSECURE_HTTP_ENV}=1, "
    "or --allow-http on the command line"
)


def insecure_http_allowed(opt_in: bool = False) -> bool:
    """Whether plain http off loopback is allowed: ``opt_in`` (the caller's keyword), else
    :data:`INSECURE_HTTP_ENV` set to ``1``, ``true`` or ``yes``. Read when a provider is
    made, so the decision is one for its life."""
    if opt_in:
        return True
    return os.environ.get(INSECURE_HTTP_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class UrlRules:
    """Where the client may send a request, decided once per protected resource.

    Every URL a server supplies (a challenge's ``resource_metadata``, the authorization servers
    a resource lists, every endpoint of their metadata, a registration's configuration URI)
    passes :meth:`check` before anything is sent there:

    * https; plain http only to a loopback host, where nothing crosses a network, or with
      ``insecure_http`` (an explicit opt-in, for development);
    * a URL that reaches this machine only when ``loopback_allowed``: the resource itself is
      on loopback. Otherwise a remote server could make the client request local services
      (``https://127.0.0.1:6379/``) and learn from its errors which ports are open.

    The default is the strictest: a remote resource, no opt-in.
    """

    loopback_allowed: bool = False
    insecure_http: bool = False

    @classmethod
    def for_resource(cls, server_url: str, *, insecure_http: bool = False) -> UrlRules:
        """The rules for the resource at ``server_url``, which must itself pass the https rule
        (:func:`secure_resource_url`): :class:`ConfigurationError` otherwise."""
        allowed = insecure_http_allowed(insecure_http)
        url = secure_resource_url(server_url, allow_insecure_http=allowed)
        return cls(reaches_this_machine(_split_url(url).host), allowed)

    def check(self, url: str, *, what: str) -> str:
        """``url`` when the client may send a request there; else :class:`DiscoveryError`
        naming ``what``, the URL and the rule, each bounded (both may come from a server)."""
        what = _cut(what)
        try:
            parts = _split_url(url)
        except ValueError as exc:
            raise DiscoveryError(
                f"{what} is not an absolute https URL ({exc}): {_show(url)}"
            ) from None
        if not self.loopback_allowed and reaches_this_machine(parts.host):
            raise DiscoveryError(
                f"{what} points at this machine ({_show(url)}), but the resource is not on "
                "loopback: a remote server may not send the client to local services; "
                "refusing it"
            )
        if parts.scheme == "http" and not self.insecure_http and not is_loopback_host(parts.host):
            raise DiscoveryError(
                f"{what} must use https: {_cut(url)} (plain http is allowed only for loopback "
                f"hosts; {_OPT_IN})"
            )
        return url


def require_secure_url(url: str, *, what: str, insecure_http: bool = False) -> str:
    """Return ``url`` when it is https, or http to a loopback host; else :class:`DiscoveryError`.

    For URLs the user gave (``issuer=``, an identity provider's token endpoint): these may be on
    loopback whatever the resource. A URL a server supplied goes through the resource's
    :class:`UrlRules` instead.
    """
    return UrlRules(loopback_allowed=True, insecure_http=insecure_http).check(url, what=what)


def require_secure_setting(url: str, *, what: str, allow_insecure_http: bool = False) -> str:
    """:func:`require_secure_url` for a URL given as an argument (``issuer=``, an identity
    provider's token endpoint): a :class:`ConfigurationError`, raised where it was given."""
    try:
        return require_secure_url(
            url, what=what, insecure_http=insecure_http_allowed(allow_insecure_http)
        )
    except DiscoveryError as exc:
        raise ConfigurationError(str(exc)) from None


def secure_resource_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """The canonical URL of a protected resource the client may send tokens to.

    https, or plain http to a loopback host; plain http across a network (where a bearer token
    would travel in clear, RFC 6750 5.3) only with ``allow_insecure_http`` or
    :data:`INSECURE_HTTP_ENV`. Anything else is a :class:`ConfigurationError` naming the URL
    and the opt-in, before any request is made; the well-known metadata URLs, on the
    resource's origin, follow from it.
    """
    canonical = canonical_resource_url(url)
    parts = _split_url(canonical)
    if (
        parts.scheme == "http"
        and not is_loopback_host(parts.host)
        and not insecure_http_allowed(allow_insecure_http)
    ):
        raise ConfigurationError(
            f"{_cut(canonical)} uses plain http off this machine, so its tokens would cross the "
            f"network in clear: use https; {_OPT_IN}"
        )
    return canonical


_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT_ENCODED = re.compile(r"%([0-9A-Fa-f]{2})")
# encodings that servers decode differently (a slash, a backslash, a percent sign: one server
# sees a separator or a second encoding where another sees a plain character)
_AMBIGUOUS_ENCODINGS = ("%2F", "%5C", "%25")


def _decode_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: ``.`` dropped, ``..`` removes the segment before."""
    segments = path.split("/")
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
            continue
        if last:
            out.append("")
    return "/".join(out) or "/"


def normalized_path(raw: str) -> str | None:
    """The path a server sees for the path ``raw`` as sent (percent-encoded), by RFC 3986 6.2.2:
    encoded unreserved characters decoded (``%2e`` is ``.``, ``%7E`` is ``~``), other encodings
    in upper case, then dot segments removed, so ``/mcp/%2e%2e/admin`` is ``/admin``.

    ``None`` where servers disagree on what the path is, so no decision on it is safe: an
    encoded slash, backslash or percent sign (``%2F``, ``%5C``, ``%25``: a separator to one
    server, a character or a second encoding to another), ``%u`` escapes or encodings that are
    not UTF-8 (overlong ``%C0%AE``), a raw backslash, or a dot segment behind path parameters
    (``..;x``, one level up to some servers).
    """
    path = raw if raw.startswith("/") else "/" + raw
    if not ("%" in path or "\\" in path or ";" in path or "/." in path):
        return path  # the common case, on every request: already what a server sees
    if "%" in path:
        path = _PERCENT_ENCODED.sub(_decode_unreserved, path)
        if any(code in path for code in _AMBIGUOUS_ENCODINGS) or "%U" in path.upper():
            return None  # "%u002e" is a dot to some servers
        try:
            unquote_to_bytes(path).decode("utf-8")
        except UnicodeDecodeError:  # overlong forms such as %C0%AE: a dot to some decoders
            return None
    if "\\" in path:
        return None
    if ";" in path and any(
        segment.split(";", 1)[0] in (".", "..") for segment in path.split("/") if ";" in segment
    ):
        return None
    if "/." in path:
        path = _remove_dot_segments(path)
    return path


def path_covers(base: str, path: str) -> bool:
    """Whether a request for ``path`` (raw, as sent) is for ``base`` or below it, as a server
    will see both (:func:`normalized_path`): ``/mcp`` covers ``/mcp`` and ``/mcp/tools``, not
    ``/mcpx``, ``/mcp/%2e%2e/admin`` (``/admin``) or ``/mcp%2Fadmin`` (one segment, or two: it
    depends on the server). This decides which requests get the token."""
    return path_is_under(normalized_path(base), path)


def path_is_under(root: str | None, path: str) -> bool:
    """:func:`path_covers` with the base already normalised (``root``), for the request path,
    where it runs on every request."""
    seen = normalized_path(path)
    if seen is None or root is None:
        return False
    return seen == root or seen.startswith(root.rstrip("/") + "/")


def _path_with_slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def resource_covers(resource: str, server_url: str) -> bool:
    """Whether the metadata ``resource`` identifies the MCP server at ``server_url``.

    RFC 9728 section 3.3 requires the client to check this before trusting the metadata, or a
    server could send us to an authorization server meant for another resource. Same origin, and
    the server's path is the resource's path or below it on a segment boundary (``/mcp`` covers
    ``/mcp/x`` but not ``/mcpx``). Queries are ignored. Never raises: anything unparsable is
    simply not covered.
    """
    try:
        res = _split_url(resource)
        srv = _split_url(server_url)
    except ValueError:
        return False
    if res.origin != srv.origin:
        return False
    return _path_with_slash(srv.path).startswith(_path_with_slash(res.path))


def protected_resource_metadata_urls(server_url: str, header_url: str | None = None) -> list[str]:
    """Where to look for the protected resource metadata, in the order to try them.

    The ``resource_metadata`` URL from the challenge first (the server told us), then the
    RFC 9728 well-known URL with the server's path inserted, then the one at the root, as the
    MCP authorization specification orders them.
    """
    parts = _split_url_or_configuration_error(server_url)
    urls: list[str] = []
    if header_url:
        urls.append(header_url)
    if parts.path and parts.path != "/":
        urls.append(f"{parts.origin}{PROTECTED_RESOURCE_WELL_KNOWN}{parts.path}")
    urls.append(f"{parts.origin}{PROTECTED_RESOURCE_WELL_KNOWN}")
    return _unique(urls)


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an authorization server's metadata, in the MCP specification's order.

    RFC 8414 with path insertion, then OpenID Connect Discovery with path insertion, then
    OpenID Connect Discovery with the path appended (the original OIDC form). Without a path,
    the two well-known URLs at the root.
    """
    parts = _split_url_or_configuration_error(issuer)
    path = parts.path.rstrip("/")
    base = parts.origin
    if not path:
        return [f"{base}{OAUTH_SERVER_WELL_KNOWN}", f"{base}{OPENID_WELL_KNOWN}"]
    return _unique(
        [
            f"{base}{OAUTH_SERVER_WELL_KNOWN}{path}",
            f"{base}{OPENID_WELL_KNOWN}{path}",
            f"{base}{path}{OPENID_WELL_KNOWN}",
        ]
    )


def _split_url_or_configuration_error(url: str) -> _URL:
    try:
        return _split_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"not a usable URL ({exc}): {_show(url)}") from None


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def fallback_server_metadata(server_url: str) -> dict[str, Any]:
    """Metadata for a server without any (MCP 2025-03-26): default paths at the server's origin.

    Older MCP servers act as their own authorization server and may publish no metadata at
    all; that revision of the specification told clients to assume these endpoints.
    """
    base = origin(server_url)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "code_challenge_methods_supported": ["S256"],
    }


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------


def parse_json_document(
    body: bytes, *, what: str, url: str, limit: int = MAX_DOCUMENT_BYTES
) -> dict[str, Any]:
    """A metadata response body as a JSON object (:func:`untrusted.parse_json`'s rules), or
    :class:`DiscoveryError`."""
    return parse_json(body, what=what, url=_cut(url), error=DiscoveryError, limit=limit)


class _Fields:
    """Typed reads of one document's fields, each failure naming the field and the document.

    A JSON ``null`` counts as absent for optional fields: servers send it for "not supported"
    and it carries no other meaning.
    """

    def __init__(self, doc: object, *, what: str, url: str, rules: UrlRules) -> None:
        if not isinstance(doc, Mapping):
            raise DiscoveryError(
                f"{what} at {_cut(url)} must be a JSON object, got {json_type(doc)}"
            )
        self.doc: Mapping[Any, Any] = doc
        self.what = what
        self.url = _cut(url)  # for messages only: where the document was read
        self.rules = rules
        self.out: dict[str, Any] = {}

    def _wrong(self, name: str, expected: str, value: object) -> NoReturn:
        raise DiscoveryError(
            f"{self.what} at {self.url}: field {name!r} must be {expected}, got {json_type(value)}"
        )

    def required_str(self, name: str) -> str:
        value = self.doc.get(name)
        if value is None:
            raise DiscoveryError(f"{self.what} at {self.url}: required field {name!r} is missing")
        if not isinstance(value, str) or not value:
            self._wrong(name, "a non-empty string", value)
        self.out[name] = value
        return value

    def optional_str(self, name: str) -> None:
        value = self.doc.get(name)
        if value is None:
            return
        if not isinstance(value, str):
            self._wrong(name, "a string", value)
        self.out[name] = value

    def required_url(self, name: str) -> None:
        value = self.required_str(name)
        self.rules.check(value, what=f"{name} in the {self.what} at {self.url}")

    def optional_url(self, name: str) -> None:
        self.optional_str(name)
        if name in self.out:
            self.rules.check(self.out[name], what=f"{name} in the {self.what} at {self.url}")

    def optional_str_list(self, name: str) -> list[str] | None:
        value = self.doc.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self._wrong(name, "an array of strings", value)
        items = list(value)
        self.out[name] = items
        return items

    def optional_bool(self, name: str) -> None:
        value = self.doc.get(name)
        if value is None:
            return
        if not isinstance(value, bool):
            self._wrong(name, "a boolean", value)
        self.out[name] = value


def validate_resource_metadata(
    doc: Mapping[str, Any], *, url: str, rules: UrlRules = UrlRules()
) -> dict[str, Any]:
    """Check an RFC 9728 protected resource metadata document; return its known fields.

    Whether ``resource`` matches the server is a separate question (:func:`resource_covers`),
    because the caller knows which server it asked about. Every URL in it passes ``rules``.
    """
    fields = _Fields(doc, what="protected resource metadata", url=url, rules=rules)
    fields.required_str("resource")
    servers = fields.optional_str_list("authorization_servers")
    for server in servers or ():
        rules.check(
            server,
            what=f"authorization server listed in the protected resource metadata at {_cut(url)}",
        )
    fields.optional_str_list("scopes_supported")
    fields.optional_str_list("bearer_methods_supported")
    fields.optional_str("resource_name")
    fields.optional_str_list("dpop_signing_alg_values_supported")
    fields.optional_bool("dpop_bound_access_tokens_required")
    return fields.out


_SERVER_OPTIONAL_URLS = (
    "registration_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "device_authorization_endpoint",
    "jwks_uri",
)
_SERVER_OPTIONAL_LISTS = (
    "scopes_supported",
    "response_types_supported",
    "grant_types_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "dpop_signing_alg_values_supported",
    "id_token_signing_alg_values_supported",  # OpenID Connect Discovery: an OpenID provider
)
_SERVER_OPTIONAL_BOOLS = (
    "client_id_metadata_document_supported",
    "authorization_response_iss_parameter_supported",
)


def validate_server_metadata(
    doc: Mapping[str, Any], *, issuer: str, url: str, rules: UrlRules = UrlRules()
) -> dict[str, Any]:
    """Check an RFC 8414 / OpenID Connect Discovery document; return its known fields.

    The ``issuer`` must equal the issuer we asked about, character for character (RFC 8414
    section 3.3): this is what stops one server's metadata from impersonating another's. Every
    endpoint passes ``rules`` (https; loopback only for a loopback resource), since credentials
    are sent to them.
    """
    fields = _Fields(doc, what="authorization server metadata", url=url, rules=rules)
    found = fields.required_str("issuer")
    if found != issuer:
        raise DiscoveryError(
            f"authorization server metadata at {_cut(url)} is for issuer {_show(found)}, "
            f"but {_show(issuer)} was expected (RFC 8414 section 3.3 requires an exact match)"
        )
    fields.required_url("authorization_endpoint")
    fields.required_url("token_endpoint")
    for name in _SERVER_OPTIONAL_URLS:
        fields.optional_url(name)
    for name in _SERVER_OPTIONAL_LISTS:
        fields.optional_str_list(name)
    for name in _SERVER_OPTIONAL_BOOLS:
        fields.optional_bool(name)
    return fields.out
