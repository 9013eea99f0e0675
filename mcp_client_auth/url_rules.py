"""Where the client may send a request, and which requests carry a resource's token.

Every URL a server supplies passes :class:`UrlRules` before anything is sent there; the
protected resource itself passes :func:`secure_resource_url` before any request is made; and
a token goes only with requests for its resource's path or below, as the server will see that
path (:func:`path_covers`). These are the rules that keep secrets where they were issued for.
"""

from __future__ import annotations

import os
import re
import string
from urllib.parse import unquote_to_bytes

from .errors import ConfigurationError, DiscoveryError
from .server_text import bounded, quoted
from .urls import canonical_resource_url, is_loopback_host, reaches_this_machine, split_url
from .values import Value, set_field

__all__ = [
    "INSECURE_HTTP_ENV",
    "STRICTEST",
    "UrlRules",
    "insecure_http_allowed",
    "normalized_path",
    "path_covers",
    "path_is_under",
    "require_secure_setting",
    "require_secure_url",
    "resource_covers",
    "secure_resource_url",
]

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


class UrlRules(Value):
    """Where the client may send a request, decided once per protected resource.

    Every URL a server supplies (a challenge's ``resource_metadata``, the authorization servers
    a resource lists, every endpoint of their metadata, a registration's configuration URI)
    passes :meth:`check` before anything is sent there:

    * https; plain http only to a loopback host, where nothing crosses a network, or with
      ``insecure_http`` (an explicit opt-in, for development);
    * a URL that reaches this machine only when ``loopback_allowed``: the resource itself is
      on loopback. Otherwise a remote server could make the client request local services
      (``https://127.0.0.1:6379/``) and learn from its errors which ports are open.

    The default is the strictest: a remote resource, no opt-in. (A value: see
    :class:`~.urls.SplitUrl`.)
    """

    __slots__ = ("insecure_http", "loopback_allowed")
    loopback_allowed: bool
    insecure_http: bool

    def __init__(
        self,
        loopback_allowed: bool = False,
        insecure_http: bool = False,
    ) -> None:
        set_field(self, "loopback_allowed", loopback_allowed)
        set_field(self, "insecure_http", insecure_http)

    @classmethod
    def for_resource(cls, server_url: str, *, insecure_http: bool = False) -> UrlRules:
        """The rules for the resource at ``server_url``, which must itself pass the https rule
        (:func:`secure_resource_url`): :class:`ConfigurationError` otherwise."""
        allowed = insecure_http_allowed(insecure_http)
        url = secure_resource_url(server_url, allow_insecure_http=allowed)
        return cls(reaches_this_machine(split_url(url).host), allowed)

    def check(self, url: str, *, what: str) -> str:
        """``url`` when the client may send a request there; else :class:`DiscoveryError`
        naming ``what``, the URL and the rule, each bounded (both may come from a server)."""
        what = bounded(what)
        try:
            parts = split_url(url)
        except ValueError as exc:
            raise DiscoveryError(
                f"{what} is not an absolute https URL ({exc}): {quoted(url)}"
            ) from None
        if not self.loopback_allowed and reaches_this_machine(parts.host):
            raise DiscoveryError(
                f"{what} points at this machine ({quoted(url)}), but the resource is not on "
                "loopback: a remote server may not send the client to local services; "
                "refusing it"
            )
        if parts.scheme == "http" and not self.insecure_http and not is_loopback_host(parts.host):
            raise DiscoveryError(
                f"{what} must use https: {bounded(url)} (plain http is allowed only for loopback "
                f"hosts; {_OPT_IN})"
            )
        return url


#: The rules when the caller names none: a remote resource, no opt-in for plain http.
STRICTEST = UrlRules()


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
    parts = split_url(canonical)
    if (
        parts.scheme == "http"
        and not is_loopback_host(parts.host)
        and not insecure_http_allowed(allow_insecure_http)
    ):
        raise ConfigurationError(
            f"{bounded(canonical)} uses plain http off this machine, so its tokens would cross the "
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
        res = split_url(resource)
        srv = split_url(server_url)
    except ValueError:
        return False
    if res.origin != srv.origin:
        return False
    return _path_with_slash(srv.path).startswith(_path_with_slash(res.path))
