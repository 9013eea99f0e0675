"""PKCE (RFC 7636) and the ``state`` parameter: the one-time secrets of an authorization request.

Only S256 exists here: the MCP authorization specification requires it, and ``plain`` would
put the verifier itself in the browser's address bar. Both values come from :mod:`secrets`,
and a :class:`PKCE` never shows its verifier in ``repr``, so it can be logged with the rest of
the flow's state.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from dataclasses import dataclass

from .errors import ConfigurationError

__all__ = ["PKCE", "new_state", "s256_challenge"]

#: RFC 7636 section 4.1: the verifier is 43 to 128 characters of the URI unreserved set.
MIN_VERIFIER_LENGTH = 43
MAX_VERIFIER_LENGTH = 128
_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_UNRESERVED_SET = frozenset(_UNRESERVED)


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_verifier(verifier: str) -> None:
    # The message describes the verifier's shape, never its value: it is a secret.
    if not isinstance(verifier, str) or not (
        MIN_VERIFIER_LENGTH <= len(verifier) <= MAX_VERIFIER_LENGTH
        and set(verifier) <= _UNRESERVED_SET
    ):
        raise ConfigurationError(
            f"a PKCE code verifier must be {MIN_VERIFIER_LENGTH} to {MAX_VERIFIER_LENGTH} "
            "characters of A-Z, a-z, 0-9, '-', '.', '_', '~' (RFC 7636 section 4.1)"
        )


@dataclass(frozen=True, repr=False)
class PKCE:
    """A code verifier and its S256 challenge, for one authorization request.

    Constructing one checks that the three fields agree, so a verifier restored from storage
    cannot silently fail at the token endpoint.
    """

    verifier: str
    challenge: str
    method: str = "S256"

    def __post_init__(self) -> None:
        if self.method != "S256":
            raise ConfigurationError(
                f"PKCE method {self.method!r} is not supported; only S256 is (MCP requires it)"
            )
        _check_verifier(self.verifier)
        if self.challenge != s256_challenge(self.verifier):
            raise ConfigurationError("the PKCE code challenge does not match its verifier")

    @classmethod
    def generate(cls, length: int = 64) -> PKCE:
        """A fresh verifier of ``length`` characters (about 6 bits of entropy each)."""
        if (
            isinstance(length, bool)
            or not isinstance(length, int)
            or not (MIN_VERIFIER_LENGTH <= length <= MAX_VERIFIER_LENGTH)
        ):
            raise ConfigurationError(
                f"PKCE verifier length must be {MIN_VERIFIER_LENGTH} to {MAX_VERIFIER_LENGTH}, "
                f"got {length!r}"
            )
        verifier = "".join(secrets.choice(_UNRESERVED) for _ in range(length))
        return cls(verifier, s256_challenge(verifier))

    @classmethod
    def from_verifier(cls, verifier: str) -> PKCE:
        """Rebuild the pair from a stored verifier."""
        _check_verifier(verifier)
        return cls(verifier, s256_challenge(verifier))

    def __repr__(self) -> str:
        return f"PKCE(challenge={self.challenge!r}, method={self.method!r})"


def new_state() -> str:
    """An unguessable ``state`` value: 256 bits from :mod:`secrets`, URL-safe base64."""
    return secrets.token_urlsafe(32)
