"""A ``private_key_jwt`` client (RFC 7523 2.2) end to end on the real authorization server:
its token request and its revocation (``logout``) both authenticate with a client assertion,
since the server refuses either without one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_client_auth import ClientCredentials, TokenStore

if TYPE_CHECKING:
    from tests.conftest import StartRealAS

pytestmark = pytest.mark.integration

CLIENT_ID = "m2m-private-key"


def test_logout_of_a_private_key_jwt_client_revokes_at_the_real_server(
    start_realas: StartRealAS,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    client = {
        "client_id": CLIENT_ID,
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": {"keys": [{**public, "alg": "ES256", "use": "sig"}]},
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
    }
    stack = start_realas(
        EXTRA_CLIENTS=json.dumps([client]),
        AT_FORMAT="opaque",  # revocable (the server cannot revoke a self-contained JWT)
        RS_VALIDATION="introspect",  # the resource asks the server, so it sees the revocation
        AT_TTL="300",
    )
    auth = ClientCredentials(
        stack.resource,
        client_id=CLIENT_ID,
        private_key=pem,
        signing_algorithm="ES256",
        store=TokenStore.memory(),
    )
    with httpx.Client(auth=auth, timeout=30) as http:
        assert http.get(stack.resource).status_code == 200
    token = auth.tokens
    assert token is not None

    result = auth.logout()

    assert result.errors == (), result.errors  # before the fix: HTTP 401 (invalid_client)
    assert result.revoked == ("access_token",)
    # the server no longer takes the token
    answer = httpx.get(
        stack.resource, headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
    )
    assert answer.status_code == 401
