"""The stored model: tokens, client registrations and everything needed to reconnect.

All three are plain frozen dataclasses that serialise to JSON-compatible dicts, so any
py-key-value-aio store can hold them. Their ``repr`` never shows a secret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypeVar

from .dpop import DPoPKey
from .server_json import server_number

__all__ = ["ClientRegistration", "ServerRecord", "TokenSet", "token_set_from_response"]

DEFAULT_LEEWAY = 60.0
# Far enough in the future for any real token; keeps a hostile ``expires_in`` from overflowing.
MAX_LIFETIME = 366 * 24 * 3600.0

E = TypeVar("E", bound=Exception)


def token_lifetime(value: object, *, error: type[E]) -> float:
    """A token answer's ``expires_in`` in seconds, or ``error``: never negative, NaN or past
    the float range; a lifetime longer than :data:`MAX_LIFETIME` is cut to it."""
    return server_number(
        value,
        name="expires_in",
        low=0,
        high=MAX_LIFETIME,
        cap=True,
        what="the token response",
        error=error,
    )


def is_header_safe(value: str) -> bool:
    """True for visible ASCII only (``%x21-7E``): no whitespace, no control characters.

    Covers RFC 6750's b64token and RFC 6749's VSCHAR tokens; such a value can be put into an
    ``Authorization`` header without changing the header's meaning.
    """
    # For ASCII, isprintable() is %x20-7E: the same test in C, not a loop over the characters
    return value.isascii() and value.isprintable() and " " not in value


def is_vschar(value: str) -> bool:
    """True for RFC 6749's VSCHAR (``%x20-7E``, a client_id's alphabet): no control character
    that could end a log line or a header, nothing outside ASCII."""
    return value.isascii() and value.isprintable()


def header_safe_or_none(value: object) -> str | None:
    """``value`` where it is a string an ``Authorization`` header can carry, else ``None``."""
    return value if isinstance(value, str) and is_header_safe(value) else None


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return server_number(
        value, name=key, low=-math.inf, high=math.inf, what="a stored record", error=ValueError
    )


@dataclass(frozen=True, repr=False)
class TokenSet:
    """An access token with its absolute expiry, and the refresh token that renews it."""

    access_token: str
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = None
    scope: str | None = None
    # when the token was received (absent in records written by older versions): the leeway
    # is capped at half the token's lifetime, so a short-lived token is not refreshed at once
    issued_at: float | None = None

    def is_valid(self, now: float, leeway: float = DEFAULT_LEEWAY) -> bool:
        """True while the access token can be sent: not expired, counting ``leeway`` seconds.

        The leeway never exceeds half the token's lifetime (when known): a token issued for
        30 s is used for 15 s, instead of being refreshed before every request.
        """
        if self.expires_at is None:
            return True
        if self.issued_at is not None and self.issued_at <= self.expires_at:
            leeway = min(leeway, (self.expires_at - self.issued_at) / 2)
        return now + leeway < self.expires_at

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset((self.scope or "").split())

    @cached_property
    def authorization(self) -> str:
        """The ``Authorization`` header value (``Bearer <token>`` or ``DPoP <token>``), made
        once per token: the request path with a valid token only reads it."""
        return f"{self.token_type} {self.access_token}"

    @property
    def dpop_bound(self) -> bool:
        """True for a DPoP-bound token (RFC 9449): useless without a proof from its key, so
        it cannot be sent as a plain bearer token."""
        return self.token_type == "DPoP"

    def with_refresh_fallback(self, previous: TokenSet | None) -> TokenSet:
        """Keep the previous refresh token when a refresh response carried none (RFC 6749 6)."""
        if self.refresh_token or previous is None or not previous.refresh_token:
            return self
        return replace(self, refresh_token=previous.refresh_token)

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet:
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("stored tokens have no access_token")
        if not is_header_safe(token):
            raise ValueError("stored access_token has characters a header cannot carry")
        return cls(
            access_token=token,
            token_type=_opt_str(data, "token_type") or "Bearer",
            expires_at=_opt_float(data, "expires_at"),
            refresh_token=_opt_str(data, "refresh_token"),
            scope=_opt_str(data, "scope"),
            issued_at=_opt_float(data, "issued_at"),
        )

    def __repr__(self) -> str:
        return (
            f"TokenSet(token_type={self.token_type!r}, expires_at={self.expires_at!r}, "
            f"refresh_token={'present' if self.refresh_token else 'absent'}, "
            f"scope={self.scope!r})"
        )

    __str__ = __repr__


#: The kind of a client without a client_id (see :attr:`ClientRegistration.kind`).
ANONYMOUS = "anonymous"


@dataclass(frozen=True, repr=False)
class ClientRegistration:
    """How this client is known to one authorization server (bound to its issuer)."""

    client_id: str
    client_secret: str | None = None
    token_endpoint_auth_method: str = "none"
    redirect_uris: tuple[str, ...] = ()
    issuer: str | None = None
    # "pre-registered" | "metadata-document" | "dynamic" | "anonymous" (no client_id: a grant
    # with no client authentication, the JWT bearer grant's assertion standing alone)
    kind: str = "dynamic"
    client_secret_expires_at: float | None = None
    registration_access_token: str | None = None
    scope: str | None = None  # the scope registered (RFC 7591); None: not known or not limited
    registration_client_uri: str | None = None  # RFC 7592 client configuration endpoint
    grant_types: tuple[str, ...] = ()  # as registered

    @property
    def redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
            "issuer": self.issuer,
            "kind": self.kind,
            "client_secret_expires_at": self.client_secret_expires_at,
            "registration_access_token": self.registration_access_token,
            "scope": self.scope,
            "registration_client_uri": self.registration_client_uri,
            "grant_types": list(self.grant_types),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClientRegistration:
        client_id = data.get("client_id")
        anonymous = data.get("kind") == ANONYMOUS and client_id == ""
        if not isinstance(client_id, str) or not (client_id or anonymous):
            raise ValueError("stored registration has no client_id")
        uris = data.get("redirect_uris") or []
        return cls(
            client_id=client_id,
            client_secret=_opt_str(data, "client_secret"),
            token_endpoint_auth_method=_opt_str(data, "token_endpoint_auth_method") or "none",
            redirect_uris=tuple(u for u in uris if isinstance(u, str)),
            issuer=_opt_str(data, "issuer"),
            kind=_opt_str(data, "kind") or "dynamic",
            client_secret_expires_at=_opt_float(data, "client_secret_expires_at"),
            # sent as ``Authorization: Bearer``: one no header can carry is no token at all
            registration_access_token=header_safe_or_none(data.get("registration_access_token")),
            scope=_opt_str(data, "scope"),
            registration_client_uri=_opt_str(data, "registration_client_uri"),
            grant_types=tuple(g for g in data.get("grant_types") or () if isinstance(g, str)),
        )

    def __repr__(self) -> str:
        return (
            f"ClientRegistration(client_id={self.client_id!r}, kind={self.kind!r}, "
            f"issuer={self.issuer!r}, auth_method={self.token_endpoint_auth_method!r}, "
            f"client_secret={'present' if self.client_secret else 'absent'})"
        )

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class ServerRecord:
    """Everything needed to reconnect to one protected resource without discovery.

    Keyed in the store by the canonical URL of the protected resource. ``resource_metadata``
    and ``server_metadata`` are the validated RFC 9728 and RFC 8414 documents as received.
    ``issuer`` binds ``client`` and ``tokens``: when the resource names another authorization
    server, both are dropped. ``dpop_key`` is the DPoP key pair (RFC 9449) that the tokens are
    bound to, made for this issuer; it is as secret as the refresh token.
    """

    resource: str
    issuer: str | None = None
    resource_metadata: Mapping[str, Any] | None = None
    server_metadata: Mapping[str, Any] | None = None
    client: ClientRegistration | None = None
    tokens: TokenSet | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    dpop_key: DPoPKey | None = None

    @property
    def resource_indicator(self) -> str:
        """The ``resource`` parameter (RFC 8707): the metadata's resource, else the server URL."""
        if self.resource_metadata:
            value = self.resource_metadata.get("resource")
            if isinstance(value, str) and value:
                return value
        return self.resource

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "resource": self.resource,
            "issuer": self.issuer,
            "resource_metadata": dict(self.resource_metadata) if self.resource_metadata else None,
            "server_metadata": dict(self.server_metadata) if self.server_metadata else None,
            "client": self.client.to_dict() if self.client else None,
            "tokens": self.tokens.to_dict() if self.tokens else None,
            "extra": dict(self.extra),
            "dpop_key": self.dpop_key.to_dict() if self.dpop_key else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerRecord:
        resource = data.get("resource")
        if not isinstance(resource, str) or not resource:
            raise ValueError("stored record has no resource")
        client = data.get("client")
        tokens = data.get("tokens")
        rm = data.get("resource_metadata")
        sm = data.get("server_metadata")
        extra = data.get("extra")
        dpop_key = data.get("dpop_key")
        return cls(
            resource=resource,
            issuer=_opt_str(data, "issuer"),
            resource_metadata=rm if isinstance(rm, dict) else None,
            server_metadata=sm if isinstance(sm, dict) else None,
            client=ClientRegistration.from_dict(client) if isinstance(client, dict) else None,
            tokens=TokenSet.from_dict(tokens) if isinstance(tokens, dict) else None,
            extra=extra if isinstance(extra, dict) else {},
            dpop_key=DPoPKey.from_dict(dpop_key) if isinstance(dpop_key, dict) else None,
        )

    def __repr__(self) -> str:
        return (
            f"ServerRecord(resource={self.resource!r}, issuer={self.issuer!r}, "
            f"client={self.client!r}, tokens={self.tokens!r}, "
            f"dpop_key={'present' if self.dpop_key else 'absent'})"
        )

    __str__ = __repr__


def token_set_from_response(
    answer: Mapping[str, Any], *, now: float, requested_scope: str | None
) -> TokenSet:
    """Validate an RFC 6749 5.1 token response; raises ``ValueError`` naming the bad field.

    The expiry is stored as an absolute time (``now + expires_in``), never as a lifetime, so a
    token read back later is judged correctly.
    """
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the token response has no access_token")
    if not is_header_safe(token):
        raise ValueError(
            "the token response has an access_token with characters a header cannot carry "
            "(whitespace, control or non-ASCII characters)"
        )
    token_type = answer.get("token_type")
    if isinstance(token_type, str) and not is_header_safe(token_type):
        raise ValueError(
            "the token response has a token_type with characters a header cannot carry"
        )
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop"):
        raise ValueError(
            f"the token response has token_type {str(token_type)[:40]!r}; "
            "only Bearer and DPoP are supported"
        )
    lifetime = answer.get("expires_in")
    expires_at: float | None = None
    if lifetime is not None:
        expires_at = now + token_lifetime(lifetime, error=ValueError)
    refresh = answer.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise ValueError("the token response has a refresh_token that is not a string")
    if refresh and not is_header_safe(refresh):
        raise ValueError(
            "the token response has a refresh_token with characters a form cannot carry "
            "(whitespace, control or non-ASCII characters)"
        )
    scope = answer.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise ValueError("the token response has a scope that is not a string")
    return TokenSet(
        access_token=token,
        token_type="DPoP" if token_type.lower() == "dpop" else "Bearer",
        expires_at=expires_at,
        refresh_token=refresh or None,
        scope=scope if scope is not None else requested_scope,
        issued_at=now if expires_at is not None else None,
    )
