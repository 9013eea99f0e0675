"""What a server sends, made safe before it is used: one name for the three modules that do it.

Everything a protected resource, an authorization server or an identity provider sends is
hostile until checked, and each check has one helper that every module uses:

- :mod:`.server_json`: a body is a JSON object within bounds (:func:`parse_json`), a number is
  finite and in its range (:func:`server_number`), a DPoP nonce is one (:func:`server_nonce`);
- :mod:`.server_text`: text shown to a person or written to a log has every control, bidi and
  invisible character escaped and every echo of a secret cut out (:func:`clean_text`,
  :func:`visible_text`, :func:`visible_url`, :func:`quoted`);
- :mod:`.error_answers`: a server's error answer is read once, through the rules above, into
  the typed error the caller names (:func:`read_error`), with the secrets the request carried
  (:func:`sent_secrets`) cut out of it.

The names are imported from their modules on first use (PEP 562), so importing one of them
costs only its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names

if TYPE_CHECKING:
    from .error_answers import (
        SECRET_FIELDS,
        ErrorAnswer,
        answer_text,
        header_secrets,
        read_error,
        sent_secrets,
    )
    from .server_json import (
        MAX_DOCUMENT_BYTES,
        MAX_JSON_DEPTH,
        MAX_NONCE,
        json_type,
        parse_json,
        server_nonce,
        server_number,
    )
    from .server_text import (
        bounded,
        clean_text,
        has_unsafe_characters,
        quoted,
        visible_text,
        visible_url,
    )

_WHERE = {
    "ErrorAnswer": "mcp_client_auth.error_answers",
    "MAX_DOCUMENT_BYTES": "mcp_client_auth.server_json",
    "MAX_JSON_DEPTH": "mcp_client_auth.server_json",
    "MAX_NONCE": "mcp_client_auth.server_json",
    "SECRET_FIELDS": "mcp_client_auth.error_answers",
    "answer_text": "mcp_client_auth.error_answers",
    "bounded": "mcp_client_auth.server_text",
    "clean_text": "mcp_client_auth.server_text",
    "has_unsafe_characters": "mcp_client_auth.server_text",
    "header_secrets": "mcp_client_auth.error_answers",
    "json_type": "mcp_client_auth.server_json",
    "parse_json": "mcp_client_auth.server_json",
    "quoted": "mcp_client_auth.server_text",
    "read_error": "mcp_client_auth.error_answers",
    "sent_secrets": "mcp_client_auth.error_answers",
    "server_nonce": "mcp_client_auth.server_json",
    "server_number": "mcp_client_auth.server_json",
    "visible_text": "mcp_client_auth.server_text",
    "visible_url": "mcp_client_auth.server_text",
}

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NONCE",
    "SECRET_FIELDS",
    "ErrorAnswer",
    "answer_text",
    "bounded",
    "clean_text",
    "has_unsafe_characters",
    "header_secrets",
    "json_type",
    "parse_json",
    "quoted",
    "read_error",
    "sent_secrets",
    "server_nonce",
    "server_number",
    "visible_text",
    "visible_url",
]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
