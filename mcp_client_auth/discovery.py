"""Which metadata URLs to try, in the MCP specification's order, and what to make of each answer.

Protected-resource metadata (RFC 9728) first: the ``resource_metadata`` URL of the challenge,
then the well-known URLs. Its ``authorization_servers`` names the issuer, whose metadata comes
from RFC 8414 and OpenID discovery with path insertion. A resource with no metadata at all is a
2025-03-26 server: its origin is the authorization server, with default endpoints when that has
no metadata either.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .effects import Effect, HttpRequest, HttpResponse
from .errors import DiscoveryError
from .metadata import (
    UrlRules,
    authorization_server_metadata_urls,
    fallback_server_metadata,
    origin,
    parse_json_document,
    protected_resource_metadata_urls,
    resource_covers,
    validate_resource_metadata,
    validate_server_metadata,
)
from .untrusted import clean_text

__all__ = ["Discovered", "choose_authorization_server", "discover", "discover_server_metadata"]

logger = logging.getLogger("mcp_client_auth.discovery")


@dataclass(frozen=True)
class Discovered:
    """The outcome of discovery for one protected resource."""

    resource: str  # the resource indicator to send (RFC 8707)
    issuer: str
    server_metadata: Mapping[str, Any]
    resource_metadata: Mapping[str, Any] | None  # None: a 2025-03-26 server without RFC 9728


def _fetch(url: str, what: str) -> Generator[Effect, Any, HttpResponse]:
    response: HttpResponse = yield HttpRequest.get_json(url, what=what, error=DiscoveryError)
    if origin(response.url) != origin(url):
        raise DiscoveryError(
            f"the {what} request to {url} was redirected to another origin ({response.url}); "
            "refusing to follow it"
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
                f"the protected resource metadata at {url} is for {metadata['resource']!r}, "
                f"not for {server_url}; refusing to authorize (a misconfigured or hostile server)"
            )
        return metadata
    return None


def discover_server_metadata(
    issuer: str, *, rules: UrlRules, legacy_server_url: str | None = None
) -> Generator[Effect, Any, dict[str, Any]]:
    """RFC 8414 / OpenID metadata of ``issuer``, its issuer checked by exact comparison.

    With ``legacy_server_url`` (no RFC 9728 metadata), a server without any metadata gets the
    2025-03-26 default endpoints at its origin.
    """
    rules.check(issuer, what="the authorization server")
    for url in authorization_server_metadata_urls(issuer):
        response = yield from _fetch(url, "authorization server metadata")
        if not _found(response):
            logger.debug("no authorization server metadata at %s (%s)", url, response.status_code)
            continue
        document = parse_json_document(response.body, what="authorization server metadata", url=url)
        return validate_server_metadata(document, issuer=issuer, url=url, rules=rules)
    if legacy_server_url is not None:
        logger.debug("no authorization server metadata for %s: using default endpoints", issuer)
        return fallback_server_metadata(legacy_server_url)
    raise DiscoveryError(
        f"the authorization server {issuer} publishes no metadata (tried "
        f"{', '.join(authorization_server_metadata_urls(issuer))})"
    )


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
    named = ", ".join(clean_text(s, 200) for s in servers[:3])
    raise DiscoveryError(
        f"{server_url} names the authorization server {named}, not {expected} ({why}); "
        "refusing to contact it"
    )


def discover(
    server_url: str,
    header_url: str | None,
    *,
    rules: UrlRules,
    expected_issuer: str | None = None,
    why: str = "issuer=",
) -> Generator[Effect, Any, Discovered]:
    """Run discovery for ``server_url`` from a 401's ``resource_metadata`` (or none); every URL
    a server names passes ``rules``."""
    resource_metadata = yield from discover_resource_metadata(server_url, header_url, rules=rules)
    if resource_metadata is None:
        issuer = origin(server_url)
        server_metadata = yield from discover_server_metadata(
            issuer, rules=rules, legacy_server_url=server_url
        )
        choose_authorization_server(
            [server_metadata["issuer"]], expected_issuer, server_url, why=why
        )
        return Discovered(server_url, server_metadata["issuer"], server_metadata, None)
    servers = resource_metadata.get("authorization_servers") or []
    if not servers:
        raise DiscoveryError(
            f"the protected resource metadata of {server_url} names no authorization server"
        )
    issuer = choose_authorization_server(servers, expected_issuer, server_url, why=why)
    server_metadata = yield from discover_server_metadata(issuer, rules=rules)
    return Discovered(resource_metadata["resource"], issuer, server_metadata, resource_metadata)
