"""DPoP (RFC 9449): a key pair per protected resource, and the proofs that bind tokens to it.

One ES256 (P-256) key pair per server record, made the first time an authorization server that
offers DPoP is used, and stored with the tokens in the record (encrypted by the store, like
them). Every token request carries a proof (``htm``, ``htu``, ``iat``, ``jti``, and the server's
``nonce`` once it asked for one); every request to the resource carries a fresh proof with
``ath``, the hash of the access token it accompanies.

A proof is made on every request to the resource, so it is cheap: the signing key is loaded
once per :class:`DPoPKey` and the JWS header (constant for a key) is encoded once; a proof is one
ECDSA signature and a small JSON dump. No secret appears in a ``repr`` or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["DPOP_ALGORITHM", "DPoPKey", "htu"]

DPOP_ALGORITHM = "ES256"
_COORDINATE = 32  # bytes of a P-256 coordinate, and of r and s in an ES256 signature


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def htu(url: str) -> str:
    """The ``htu`` claim for ``url``: the URL without its query and fragment (RFC 9449 4.2)."""
    end = len(url)
    for mark in ("?", "#"):
        at = url.find(mark)
        if 0 <= at < end:
            end = at
    return url[:end]


_SIGNING: tuple[Any, Any] | None = None


def _signing() -> tuple[Any, Any]:
    """ECDSA-with-SHA-256 and the DER decoder, imported once (kept off ``import`` time)."""
    global _SIGNING
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    _SIGNING = (ec.ECDSA(hashes.SHA256()), decode_dss_signature)
    return _SIGNING


class DPoPKey:
    """An ES256 key pair for DPoP proofs. ``to_dict()`` holds the private key: store it only
    where the tokens are stored (encrypted); ``repr`` shows the public thumbprint only."""

    __slots__ = ("_ath", "_d", "_header", "_key", "_thumbprint", "_x", "_y")

    def __init__(self, x: str, y: str, d: str) -> None:
        for name, value in (("x", x), ("y", y), ("d", d)):
            if not isinstance(value, str) or len(_unb64(value)) != _COORDINATE:
                raise ValueError(f"a DPoP key's {name!r} is not a P-256 coordinate")
        self._x, self._y, self._d = x, y, d
        self._key: Any = None  # the cryptography private key, loaded on first use
        self._header: bytes | None = None  # the encoded JWS header, made on first use
        self._thumbprint: str | None = None
        self._ath: tuple[str, str] = ("", "")  # (access token, its ath): one entry

    # -- making, storing, reading ----------------------------------------------------------

    @classmethod
    def generate(cls) -> DPoPKey:
        """A new P-256 key pair."""
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.private_numbers()
        public = numbers.public_numbers
        key = cls(
            _b64(public.x.to_bytes(_COORDINATE, "big")),
            _b64(public.y.to_bytes(_COORDINATE, "big")),
            _b64(numbers.private_value.to_bytes(_COORDINATE, "big")),
        )
        key._key = private
        return key

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DPoPKey:
        """Read a key written by :meth:`to_dict` (a private EC JWK); ``ValueError`` if unusable."""
        if data.get("kty") != "EC" or data.get("crv") != "P-256":
            raise ValueError("a stored DPoP key is not a P-256 EC key")
        return cls(data.get("x"), data.get("y"), data.get("d"))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, str]:
        """The private JWK (RFC 7517): secret, like a refresh token."""
        return {"kty": "EC", "crv": "P-256", "x": self._x, "y": self._y, "d": self._d}

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public JWK sent in every proof's header."""
        return {"kty": "EC", "crv": "P-256", "x": self._x, "y": self._y}

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 JWK SHA-256 thumbprint (``cnf.jkt`` of bound tokens, ``dpop_jkt``)."""
        if self._thumbprint is None:
            canonical = json.dumps(
                {"crv": "P-256", "kty": "EC", "x": self._x, "y": self._y},
                separators=(",", ":"),
                sort_keys=True,
            )
            self._thumbprint = _b64(hashlib.sha256(canonical.encode("ascii")).digest())
        return self._thumbprint

    # -- proofs ----------------------------------------------------------------------------

    def _load(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.derive_private_key(int.from_bytes(_unb64(self._d), "big"), ec.SECP256R1())
        public = private.public_key().public_numbers()
        if (public.x, public.y) != (
            int.from_bytes(_unb64(self._x), "big"),
            int.from_bytes(_unb64(self._y), "big"),
        ):
            raise ValueError("a stored DPoP key's public part does not match its private part")
        return private

    def _ath_of(self, access_token: str) -> str:
        cached_token, cached_ath = self._ath
        if cached_token == access_token:
            return cached_ath
        ath = _b64(hashlib.sha256(access_token.encode("ascii")).digest())
        self._ath = (access_token, ath)
        return ath

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
    ) -> str:
        """A DPoP proof JWT for one request (RFC 9449 4.2): fresh ``jti`` every time."""
        key = self._key
        if key is None:
            key = self._key = self._load()
        algorithm, decode = _SIGNING or _signing()
        header = self._header
        if header is None:
            encoded = json.dumps(
                {"typ": "dpop+jwt", "alg": DPOP_ALGORITHM, "jwk": self.public_jwk},
                separators=(",", ":"),
            )
            header = self._header = _b64(encoded.encode("ascii")).encode("ascii")
        # The claims as JSON text by hand: json.dumps of a dict costs more than the rest of
        # the proof but the signature. jti (base64url) and iat (an int) need no escaping.
        parts = [
            '{"jti":"',
            secrets.token_urlsafe(16),
            '","htm":',
            json.dumps(method.upper()),
            ',"htu":',
            json.dumps(htu(url)),
            ',"iat":',
            str(int(time.time() if now is None else now)),
        ]
        if access_token is not None:
            parts += (',"ath":"', self._ath_of(access_token), '"')
        if nonce is not None:
            parts += (',"nonce":', json.dumps(nonce))
        parts.append("}")
        payload = _b64("".join(parts).encode("utf-8"))
        signing_input = header + b"." + payload.encode("ascii")
        r, s = decode(key.sign(signing_input, algorithm))
        signature = r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
        return signing_input.decode("ascii") + "." + _b64(signature)

    # -- comparison, no secrets shown ------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DPoPKey):
            return NotImplemented
        return (self._x, self._y, self._d) == (other._x, other._y, other._d)

    def __hash__(self) -> int:
        return hash((self._x, self._y))

    def __repr__(self) -> str:
        return f"DPoPKey(ES256, jkt={self.thumbprint!r})"

    __str__ = __repr__
