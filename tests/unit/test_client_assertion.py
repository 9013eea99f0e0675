"""A ``private_key_jwt`` client signs every token request with a fresh assertion: the refresh
too, and the retry a DPoP nonce asks for (a server refuses an assertion whose ``jti`` it has
already seen: oidc-provider checks the client before the DPoP proof). Driven through the
sans-IO flow, the token endpoint played here."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_client_auth.dpop import DPoPKey
from mcp_client_auth.effects import HttpRequest, HttpResponse
from mcp_client_auth.flow import AuthFlow, FlowSettings
from mcp_client_auth.machine_grant import MachineGrant
from mcp_client_auth.registration import ClientSettings
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

ISSUER = "https://as.example"
RESOURCE = "https://mcp.example/mcp"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def flow_with_a_dpop_refresh_token() -> AuthFlow:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = FlowSettings(
        server_url=RESOURCE,
        client=ClientSettings(client_name="test", client_id="machine-1"),
        machine=MachineGrant("client_credentials", private_key=pem, signing_algorithm="ES256"),
    )
    flow = AuthFlow(settings, clock=time.time)
    flow.record = ServerRecord(
        resource=RESOURCE,
        issuer=ISSUER,
        server_metadata={
            "issuer": ISSUER,
            "token_endpoint": ISSUER + "/token",
            "dpop_signing_alg_values_supported": ["ES256"],
        },
        client=ClientRegistration(
            client_id="machine-1",
            token_endpoint_auth_method="private_key_jwt",
            issuer=ISSUER,
            kind="pre-registered",
        ),
        tokens=TokenSet(access_token="old", expires_at=0, refresh_token="rt-1", token_type="DPoP"),
        dpop_key=DPoPKey.generate(),
    )
    return flow


def test_the_dpop_nonce_retry_of_a_refresh_signs_a_new_assertion() -> None:
    flow = flow_with_a_dpop_refresh_token()
    seen: list[str] = []
    steps = flow.refresh()
    item = next(steps)
    while True:
        answer = None
        if isinstance(item, HttpRequest):
            form = {k: v[0] for k, v in parse_qs((item.body or b"").decode()).items()}
            assert form["grant_type"] == "refresh_token"
            assertion = claims(form["client_assertion"])
            assert assertion["iss"] == assertion["sub"] == "machine-1"
            assert assertion["aud"] in (ISSUER, ISSUER + "/token")
            jti, nonce = assertion["jti"], claims(item.headers["DPoP"]).get("nonce")
            if jti in seen:
                body, status, headers = {"error": "invalid_client"}, 401, {}
            elif nonce is None:
                body, status, headers = {"error": "use_dpop_nonce"}, 400, {"dpop-nonce": "n-1"}
            else:
                body = {"access_token": "new", "token_type": "DPoP", "expires_in": 60}
                status, headers = 200, {}
            seen.append(jti)
            answer = HttpResponse(status, headers, json.dumps(body).encode(), item.url)
        try:
            item = steps.send(answer)
        except StopIteration as done:
            tokens = done.value
            break
    assert len(seen) == 2 and seen[0] != seen[1]  # the retry carried an assertion of its own
    assert tokens is not None and tokens.access_token == "new"
