"""Where a resource's and an authorization server's metadata are looked for, in the order the
MCP authorization specification gives (RFC 9728, RFC 8414, OpenID Connect Discovery), and what
to assume for a server that publishes none."""

from __future__ import annotations

from typing import Any

from .urls import origin, usable_url

__all__ = [
    "OAUTH_SERVER_WELL_KNOWN",
    "OPENID_WELL_KNOWN",
    "PROTECTED_RESOURCE_WELL_KNOWN",
    "authorization_server_metadata_urls",
    "fallback_server_metadata",
    "protected_resource_metadata_urls",
]

PROTECTED_RESOURCE_WELL_KNOWN = "/.well-known/oauth-protected-resource"
OAUTH_SERVER_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OPENID_WELL_KNOWN = "/.well-known/openid-configuration"


def protected_resource_metadata_urls(server_url: str, header_url: str | None = None) -> list[str]:
    """Where to look for the protected resource metadata, in the order to try them.

    The ``resource_metadata`` URL from the challenge first (the server told us), then the
    RFC 9728 well-known URL with the server's path inserted, then the one at the root, as the
    MCP authorization specification orders them.
    """
    parts = usable_url(server_url)
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
    parts = usable_url(issuer)
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
