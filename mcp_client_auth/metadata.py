"""Metadata documents, ``WWW-Authenticate`` challenges and the URL rules of MCP authorization.

One name for the modules that judge what a server says, each a pure function of its
arguments (no network, no disk, no clock), so every hostile or broken input is tested directly:

- :mod:`.challenges`: ``WWW-Authenticate`` parsed (RFC 9110 section 11);
- :mod:`.urls`: URLs split and made canonical (RFC 8707), which hosts are this machine;
- :mod:`.url_rules`: where the client may send requests, and which requests carry a token;
- :mod:`.well_known`: where metadata is looked for, in the MCP specification's order;
- :mod:`.metadata_documents`: RFC 9728 and RFC 8414 / OpenID Connect Discovery documents
  checked before they are trusted.

Discovery and the flow decide *which* document to fetch and *when*; these modules decide what
a header or a document means and whether it can be trusted. The names are imported from their
modules on first use (PEP 562), so a process that needs only the URL rules imports only those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names

if TYPE_CHECKING:
    from .challenges import (
        MAX_CHALLENGE_HEADER_BYTES,
        Challenge,
        find_challenge,
        parse_www_authenticate,
    )
    from .metadata_documents import (
        parse_json_document,
        validate_resource_metadata,
        validate_server_metadata,
    )
    from .server_json import MAX_DOCUMENT_BYTES
    from .server_text import clean_text
    from .url_rules import (
        INSECURE_HTTP_ENV,
        UrlRules,
        insecure_http_allowed,
        normalized_path,
        path_covers,
        path_is_under,
        require_secure_setting,
        require_secure_url,
        resource_covers,
        secure_resource_url,
    )
    from .urls import canonical_resource_url, is_loopback_host, origin, reaches_this_machine
    from .well_known import (
        authorization_server_metadata_urls,
        fallback_server_metadata,
        protected_resource_metadata_urls,
    )

_WHERE = {
    "Challenge": "mcp_client_auth.challenges",
    "INSECURE_HTTP_ENV": "mcp_client_auth.url_rules",
    "MAX_CHALLENGE_HEADER_BYTES": "mcp_client_auth.challenges",
    "MAX_DOCUMENT_BYTES": "mcp_client_auth.server_json",
    "UrlRules": "mcp_client_auth.url_rules",
    "authorization_server_metadata_urls": "mcp_client_auth.well_known",
    "canonical_resource_url": "mcp_client_auth.urls",
    "clean_text": "mcp_client_auth.server_text",
    "fallback_server_metadata": "mcp_client_auth.well_known",
    "find_challenge": "mcp_client_auth.challenges",
    "insecure_http_allowed": "mcp_client_auth.url_rules",
    "is_loopback_host": "mcp_client_auth.urls",
    "normalized_path": "mcp_client_auth.url_rules",
    "origin": "mcp_client_auth.urls",
    "parse_json_document": "mcp_client_auth.metadata_documents",
    "parse_www_authenticate": "mcp_client_auth.challenges",
    "path_covers": "mcp_client_auth.url_rules",
    "path_is_under": "mcp_client_auth.url_rules",
    "protected_resource_metadata_urls": "mcp_client_auth.well_known",
    "reaches_this_machine": "mcp_client_auth.urls",
    "require_secure_setting": "mcp_client_auth.url_rules",
    "require_secure_url": "mcp_client_auth.url_rules",
    "resource_covers": "mcp_client_auth.url_rules",
    "secure_resource_url": "mcp_client_auth.url_rules",
    "validate_resource_metadata": "mcp_client_auth.metadata_documents",
    "validate_server_metadata": "mcp_client_auth.metadata_documents",
}

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

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
