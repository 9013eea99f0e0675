"""Just enough JWS to sign a client assertion (RFC 7523, ``private_key_jwt``).

Signing only, with ``cryptography``: RS256/PS256 with an RSA key, ES256/ES384 with an EC key.
No verification and no parsing of untrusted tokens happen here.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["client_assertion", "sign"]

_EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _load_key(private_key: str | bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = private_key.encode() if isinstance(private_key, str) else private_key
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"private_key is not a usable PEM private key ({exc})") from None


def sign(
    claims: Mapping[str, Any],
    private_key: str | bytes,
    algorithm: str,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of ``claims`` signed with ``private_key``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = _load_key(private_key)
    header = {"alg": algorithm, "typ": "JWT", **(headers or {})}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    ).encode("ascii")
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(
        algorithm[2:]
    )
    if digest is None:
        raise ConfigurationError(f"unsupported signing algorithm {algorithm!r}")
    if algorithm.startswith(("RS", "PS")) and isinstance(key, rsa.RSAPrivateKey):
        pad: Any = (
            padding.PKCS1v15()
            if algorithm.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        signature = key.sign(signing_input, pad, digest)
    elif algorithm in _EC_SIZES and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        size = _EC_SIZES[algorithm]
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        raise ConfigurationError(
            f"the private key does not fit the signing algorithm {algorithm!r}"
        )
    return signing_input.decode("ascii") + "." + _b64(signature)


def client_assertion(
    client_id: str, audience: str, private_key: str | bytes, algorithm: str, *, lifetime: int = 300
) -> str:
    """RFC 7523 section 3: iss = sub = client_id, aud = the authorization server."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    return sign(claims, private_key, algorithm)
