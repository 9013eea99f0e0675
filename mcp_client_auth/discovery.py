"""Which metadata URLs to try, in the MCP specification's order, and what to make of each answer.

Protected-resource metadata (RFC 9728) first: the ``resource_metadata`` URL of the challenge,
then the well-known URLs. Its ``authorization_servers`` names the issuer, whose metadata comes
from RFC 8414 and OpenID discovery with path insertion. A resource with no metadata at all is a
2025-03-26 server: its origin is the authorization server, with default endpoints when that has
no metadata either; but only a resource that answered 401 is one (a URL that answers 404 to
everything is a wrong URL, and is reported as such, with every URL tried).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .challenges import find_challenge, parse_www_authenticate
from .effects import Effect, HttpRequest, HttpResponse
from .errors import DiscoveryError
from .metadata_documents import (
    parse_json_document,
    validate_resource_metadata,
    validate_server_metadata,
)
from .server_text import clean_text, quoted
from .url_rules import UrlRules, resource_covers
from .urls import origin
from .well_known import (
    authorization_server_metadata_urls,
    fallback_server_metadata,
    protected_resource_metadata_urls,
)

__all__ = [
    "Discovered",
    "choose_authorization_server",
    "discover",
    "discover_server_metadata",
    "probe_resource",
]

logger = logging.getLogger("mcp_client_auth.discovery")


def _url(url: str) -> str:
    """A URL in an error message, bounded: a server chooses it (a metadata or issuer URL, a
    redirect's target) or a part of it, and every log line that prints the error carries it."""
    return clean_text(url, 200)


@dataclass(frozen=True)
class Discovered:
    """The outcome of discovery for one protected resource."""

    resource: str  # the resource indicator to send (RFC 8707)
    issuer: str
    server_metadata: Mapping[str, Any]
    resource_metadata: Mapping[str, Any] | None  # None: a 2025-03-26 server without RFC 9728
    # why the 2025-03-26 default endpoints are used ("no OAuth metadata found at any of: ..."),
    # so a failure at one of them reports the real cause; None where metadata was found
    assumed_because: str | None = None


def _fetch(url: str, what: str) -> Generator[Effect, Any, HttpResponse]:
    response: HttpResponse = yield HttpRequest.get_json(url, what=what, error=DiscoveryError)
    if origin(response.url) != origin(url):
        raise DiscoveryError(
            f"the {what} request to {_url(url)} was redirected to another origin "
            f"({_url(response.url)}); refusing to follow it"
        )
    return response


def _found(response: HttpResponse) -> bool:
    return response.status_code == 200


def discover_resource_metadata(
    server_url: str, header_url: str | None, *, rules: UrlRules
) -> Generator[Effect, Any, dict[str, Any] | None]:
    """RFC 9728 metadata for ``server_url``, or ``None`` when the resource publishes none."""
    if header_url is not None:
        rules.check(header_url, what="the resource_metadata URL of the challenge")
    for url in protected_resource_metadata_urls(server_url, header_url):
        response = yield from _fetch(url, "protected resource metadata")
        if not _found(response):
            logger.debug("no protected resource metadata at %s (%s)", url, response.status_code)
            continue
        document = parse_json_document(response.body, what="protected resource metadata", url=url)
        metadata = validate_resource_metadata(document, url=url, rules=rules)
        if not resource_covers(metadata["resource"], server_url):
            raise DiscoveryError(
                f"the protected resource metadata at {_url(url)} is for "
                f"{quoted(metadata['resource'])}, not for {_url(server_url)}; refusing to "
                "authorize (a misconfigured or hostile server)"
            )
        return metadata
    return None


def find_server_metadata(
    issuer: str, *, rules: UrlRules
) -> Generator[Effect, Any, dict[str, Any] | None]:
    """RFC 8414 / OpenID metadata of ``issuer``, its issuer checked by exact comparison;
    ``None`` when it publishes none."""
    rules.check(issuer, what="the authorization server")
    for url in authorization_server_metadata_urls(issuer):
        response = yield from _fetch(url, "authorization server metadata")
        if not _found(response):
            logger.debug("no authorization server metadata at %s (%s)", url, response.status_code)
            continue
        document = parse_json_document(response.body, what="authorization server metadata", url=url)
        return validate_server_metadata(document, issuer=issuer, url=url, rules=rules)
    return None


def discover_server_metadata(
    issuer: str, *, rules: UrlRules
) -> Generator[Effect, Any, dict[str, Any]]:
    """RFC 8414 / OpenID metadata of ``issuer``; a :class:`DiscoveryError` when it has none."""
    metadata = yield from find_server_metadata(issuer, rules=rules)
    if metadata is None:
        raise DiscoveryError(
            f"the authorization server {_url(issuer)} publishes no metadata (tried "
            f"{', '.join(_url(u) for u in authorization_server_metadata_urls(issuer))})"
        )
    return metadata


# What the probe of a resource sends: MCP's ``ping``, which changes nothing on any server.
PROBE_BODY = b'{"jsonrpc":"2.0","id":0,"method":"ping"}'


def probe_resource(server_url: str) -> Generator[Effect, Any, HttpResponse]:
    """An unauthenticated request to the resource, to learn whether it asks for OAuth (401).

    Sent only by a login that has not seen the resource answer yet and found no metadata:
    the 2025-03-26 default endpoints are for a server that answered 401, not for any URL.
    """
    response: HttpResponse = yield HttpRequest(
        "POST",
        server_url,
        "request to the resource (does it ask for a login?)",
        DiscoveryError,
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        PROBE_BODY,
    )
    return response


def _nothing_found(tried: Sequence[str], answer: str) -> str:
    return f"no OAuth metadata found at any of: {', '.join(_url(u) for u in tried)}; {answer}"


def choose_authorization_server(
    servers: Sequence[str], expected: str | None, server_url: str, *, why: str = "issuer="
) -> str:
    """The authorization server to use: the first the resource lists (RFC 9728), or the one the
    user expects (``issuer=``), which it must list. A resource that names only others is
    refused before any request reaches them: a pre-registered client's secret, say, is for the
    server it was registered at."""
    if expected is None:
        return servers[0]
    if expected in servers:
        return expected
    named = ", ".join(_url(s) for s in servers[:3])
    raise DiscoveryError(
        f"{_url(server_url)} names the authorization server {named}, not {_url(expected)} "
        f"({why}); refusing to contact it"
    )


def _legacy_or_nothing(
    server_url: str, tried: Sequence[str], *, challenged: bool
) -> Generator[Effect, Any, tuple[str | None, str]]:
    """No metadata anywhere: the ``resource_metadata`` URL a probe's challenge names, if any,
    and why the 2025-03-26 default endpoints apply.

    A :class:`DiscoveryError` saying what was tried where the resource does not ask for a
    login at all: it is not an OAuth-protected endpoint, and the user should check the URL.
    """
    if not challenged:
        response = yield from probe_resource(server_url)
        if response.status_code != 401:
            raise DiscoveryError(
                _nothing_found(
                    tried,
                    f"and {_url(server_url)} answered HTTP {response.status_code}, not 401, so it "
                    "does not ask for an OAuth login; check the URL (it should be the MCP "
                    "endpoint itself, such as https://mcp.example.com/mcp)",
                )
            )
        header_url = _resource_metadata_param(response)
        if header_url is not None and header_url not in tried:
            return header_url, ""
    return None, _nothing_found(tried, "so the 2025-03-26 default endpoints are assumed")


def _resource_metadata_param(response: HttpResponse) -> str | None:
    """The ``resource_metadata`` of a probe's Bearer or DPoP challenge, if it has one."""
    try:
        challenge = find_challenge(parse_www_authenticate(list(response.challenges)))
    except DiscoveryError:
        return None
    return challenge.param("resource_metadata") if challenge is not None else None


def discover(
    server_url: str,
    header_url: str | None,
    *,
    rules: UrlRules,
    expected_issuer: str | None = None,
    why: str = "issuer=",
    challenged: bool = True,
) -> Generator[Effect, Any, Discovered]:
    """Run discovery for ``server_url`` from a 401's ``resource_metadata`` (or none); every URL
    a server names passes ``rules``.

    ``challenged``: the resource answered 401 (the caller has its challenge). Without that, a
    resource with no metadata anywhere is asked once, by :func:`probe_resource`.
    """
    resource_metadata = yield from discover_resource_metadata(server_url, header_url, rules=rules)
    if resource_metadata is None:
        issuer = origin(server_url)
        server_metadata = yield from find_server_metadata(issuer, rules=rules)
        assumed_because = None
        if server_metadata is None:
            tried = [
                *protected_resource_metadata_urls(server_url, header_url),
                *authorization_server_metadata_urls(issuer),
            ]
            named, assumed_because = yield from _legacy_or_nothing(
                server_url, tried, challenged=challenged
            )
            if named is not None:  # the probe's challenge names the resource's metadata
                return (
                    yield from discover(
                        server_url, named, rules=rules, expected_issuer=expected_issuer, why=why
                    )
                )
            server_metadata = fallback_server_metadata(server_url)
            logger.debug("%s: using the 2025-03-26 default endpoints", assumed_because)
        choose_authorization_server(
            [server_metadata["issuer"]], expected_issuer, server_url, why=why
        )
        return Discovered(
            server_url, server_metadata["issuer"], server_metadata, None, assumed_because
        )
    servers = resource_metadata.get("authorization_servers") or []
    if not servers:
        raise DiscoveryError(
            f"the protected resource metadata of {_url(server_url)} names no authorization server"
        )
    issuer = choose_authorization_server(servers, expected_issuer, server_url, why=why)
    server_metadata = yield from discover_server_metadata(issuer, rules=rules)
    return Discovered(resource_metadata["resource"], issuer, server_metadata, resource_metadata)
