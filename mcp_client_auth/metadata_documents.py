"""The metadata documents checked before they are trusted: RFC 9728 protected resource
metadata, and RFC 8414 / OpenID Connect Discovery authorization server metadata.

Each field is read with its type checked (a failure names the field and the document), every
URL in a document passes the resource's :class:`~.url_rules.UrlRules` (credentials are sent
to them), and an authorization server's document must name the issuer that was asked about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from .errors import DiscoveryError
from .server_json import MAX_DOCUMENT_BYTES, json_type, parse_json
from .server_text import bounded, quoted
from .url_rules import STRICTEST, UrlRules

__all__ = [
    "parse_json_document",
    "validate_resource_metadata",
    "validate_server_metadata",
]


def parse_json_document(
    body: bytes, *, what: str, url: str, limit: int = MAX_DOCUMENT_BYTES
) -> dict[str, Any]:
    """A metadata response body as a JSON object (:func:`untrusted.parse_json`'s rules), or
    :class:`DiscoveryError`."""
    return parse_json(body, what=what, url=bounded(url), error=DiscoveryError, limit=limit)


class _Fields:
    """Typed reads of one document's fields, each failure naming the field and the document.

    A JSON ``null`` counts as absent for optional fields: servers send it for "not supported"
    and it carries no other meaning.
    """

    def __init__(self, doc: object, *, what: str, url: str, rules: UrlRules) -> None:
        if not isinstance(doc, Mapping):
            raise DiscoveryError(
                f"{what} at {bounded(url)} must be a JSON object, got {json_type(doc)}"
            )
        self.doc: Mapping[Any, Any] = doc
        self.what = what
        self.url = bounded(url)  # for messages only: where the document was read
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
    doc: Mapping[str, Any], *, url: str, rules: UrlRules = STRICTEST
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
            what="authorization server listed in the protected resource metadata at "
            + bounded(url),
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
    doc: Mapping[str, Any], *, issuer: str, url: str, rules: UrlRules = STRICTEST
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
            f"authorization server metadata at {bounded(url)} is for issuer {quoted(found)}, "
            f"but {quoted(issuer)} was expected (RFC 8414 section 3.3 requires an exact match)"
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
