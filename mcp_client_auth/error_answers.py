"""What a request sent, and a server's error answer read without showing any of it again.

A server may echo what it was sent (a code, a refresh token, a client secret) in its error
answer, and that answer ends up in an exception, a log line or the terminal. :func:`sent_secrets`
lists every secret a request carried; :func:`read_error` is the one reader of every error
answer (resource, authorization server, identity provider, registration, revocation, device
authorization), parsing it by :func:`~.server_json.parse_json`'s rules and cleaning its texts
with those secrets cut out (:func:`~.server_text.clean_text`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote_plus

from .errors import AuthorizationError, TokenError
from .server_json import parse_json
from .server_text import clean_text

if TYPE_CHECKING:
    from .effects import HttpRequest, HttpResponse

__all__ = [
    "SECRET_FIELDS",
    "ErrorAnswer",
    "answer_text",
    "header_secrets",
    "read_error",
    "sent_secrets",
]

#: Form and JSON fields whose values are secrets: never shown again, even when a server echoes
#: them back.
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "actor_token",
        "assertion",
        "client_assertion",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "id_token",
        "refresh_token",
        "registration_access_token",
        "subject_token",
        "token",
    }
)

E = TypeVar("E", bound=Exception)


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The credentials in request headers: ``Authorization`` (whole, and its credentials
    without the scheme) and a ``DPoP`` proof."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in ("authorization", "dpop") and value:
            scheme, _, credentials = value.partition(" ")
            found += (value, credentials)
            if scheme.lower() == "basic":
                found += _basic_secrets(credentials)
    return found


def _basic_secrets(credentials: str) -> list[str]:
    """What HTTP Basic credentials carry in clear (RFC 6749 2.3.1: ``id:secret``, each
    form-encoded), which a server may echo decoded."""
    try:
        pair = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return []
    secret = pair.partition(":")[2]
    return [pair, secret, unquote_plus(secret)]


def sent_secrets(request: HttpRequest | None) -> tuple[str, ...]:
    """Every secret ``request`` carried: the values of :data:`SECRET_FIELDS` in its form or
    JSON body, and its credentials headers (``Authorization``, ``DPoP``)."""
    if request is None:
        return ()
    found = header_secrets(request.headers)
    body = request.body or b""
    fields: Iterable[tuple[str, Any]] = ()
    content_type = next(
        (v for k, v in request.headers.items() if k.lower() == "content-type"), ""
    ).lower()
    try:
        if "json" in content_type:
            document = json.loads(body)
            fields = document.items() if isinstance(document, dict) else ()
        elif body:
            fields = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    except (ValueError, UnicodeDecodeError):
        fields = ()
    found += [v for k, v in fields if k in SECRET_FIELDS and isinstance(v, str)]
    return tuple(s for s in dict.fromkeys(found) if s)


class ErrorAnswer(NamedTuple):
    """A server's error answer, read by :func:`read_error`: cleaned, what was sent cut out."""

    status: int
    error: str | None
    description: str | None

    @property
    def detail(self) -> str:
        """``: error (description)``, or nothing when the server said neither."""
        text = f": {self.error}" if self.error else ""
        return text + (f" ({self.description})" if self.description else "")

    def as_error(self, kind: type[E], message: str) -> E:
        """``kind(message)``, carrying the server's ``error`` and ``error_description`` where
        ``kind`` has room for them."""
        if issubclass(kind, TokenError):
            return kind(
                message, error=self.error, description=self.description, status_code=self.status
            )
        if issubclass(kind, AuthorizationError):
            return kind(message, error=self.error, description=self.description)
        return kind(message)


def read_error(response: HttpResponse) -> ErrorAnswer:
    """The ``error`` and ``error_description`` of a server's answer, safe to show.

    The one reader of every error answer (resource, authorization server, identity provider,
    registration, revocation, device authorization): the body is parsed by the strict rules of
    :func:`parse_json` (an answer that breaks them simply says nothing), and both texts go
    through :func:`clean_text` with the secrets of the request that was answered.
    """
    try:
        answer: Mapping[str, Any] = parse_json(
            response.body, what="error answer", url=response.url, error=ValueError
        )
    except ValueError:
        answer = {}
    secrets = sent_secrets(response.request)
    error = answer.get("error")
    description = answer.get("error_description")
    return ErrorAnswer(
        response.status_code,
        (clean_text(error, 100, secrets=secrets) or None) if isinstance(error, str) else None,
        (clean_text(description, 300, secrets=secrets) or None)
        if isinstance(description, str)
        else None,
    )


def answer_text(response: HttpResponse, value: object, limit: int = 100) -> str:
    """Text taken from ``response`` (a value, or a reason that quotes one) for a message:
    cleaned, and what the request sent cut out."""
    secrets = sent_secrets(response.request)
    return clean_text(str(value), limit, secrets=secrets)
