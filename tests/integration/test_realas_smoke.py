"""The real-server fixtures work: plain httpx against oidc-provider and the protected resource,
no library code. If these fail, every integration test that uses the fixtures is suspect."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

if TYPE_CHECKING:
    from tests.conftest import RealStack, StartRealAS

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:8765/callback"  # nothing listens: the login stops at it


def register(stack: RealStack, **metadata: Any) -> dict[str, Any]:
    body = {
        "client_name": "smoke test",
        "application_type": "native",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "mcp:tools",
        **metadata,
    }
    response = httpx.post(stack.as_metadata()["registration_endpoint"], json=body, timeout=5)
    assert response.status_code == 201, response.text
    return dict(response.json())


def code_flow(
    stack: RealStack, login: Callable[[str], str], client_id: str, *, scope: str = "mcp:tools"
) -> dict[str, Any]:
    """Authorization code + PKCE S256 + resource (RFC 8707), as an MCP client does it."""
    meta = stack.as_metadata()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": state,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        "resource": stack.resource,
    }
    back = login(f"{meta['authorization_endpoint']}?{urlencode(query)}")
    assert back.startswith(REDIRECT_URI + "?"), back
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert params["state"] == state
    assert params["iss"] == stack.issuer  # RFC 9207, exact string
    response = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": stack.resource,
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def call(stack: RealStack, access_token: str) -> httpx.Response:
    """A JSON-RPC request to the protected resource with this access token."""
    return httpx.post(
        stack.resource,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )


def test_authorization_server_metadata(realas: RealStack) -> None:
    meta = realas.as_metadata()
    assert meta["issuer"] == realas.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for endpoint in ("authorization", "token", "registration", "revocation"):
        assert meta[f"{endpoint}_endpoint"].startswith(realas.issuer + "/")
    assert meta["device_authorization_endpoint"].startswith(realas.issuer + "/")
    openid = httpx.get(f"{realas.issuer}/.well-known/openid-configuration", timeout=5).json()
    assert openid["issuer"] == realas.issuer


def test_protected_resource_metadata_and_challenge(realas: RealStack) -> None:
    prm = httpx.get(realas.prm_url, timeout=5).json()
    assert prm["resource"] == realas.resource
    assert prm["authorization_servers"] == [realas.issuer]

    response = httpx.post(realas.resource, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{realas.prm_url}"' in challenge
    assert 'scope="mcp:tools"' in challenge


def test_dynamic_registration(realas: RealStack) -> None:
    client = register(realas)
    assert client["client_id"]
    assert client["redirect_uris"] == [REDIRECT_URI]
    assert client["token_endpoint_auth_method"] == "none"


def test_code_flow_gives_a_token_for_the_resource(
    realas: RealStack, realas_login: Callable[[str], str]
) -> None:
    client = register(realas)
    tokens = code_flow(realas, realas_login, client["client_id"])
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == realas.resource
    assert claims["iss"] == realas.issuer
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "mcp:tools"

    ok = call(realas, tokens["access_token"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["auth"]["aud"] == realas.resource

    bad = call(realas, "not-a-token")
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_short_lived_token_expires_and_refreshes(
    start_realas: StartRealAS, realas_login: Callable[[str], str]
) -> None:
    stack = start_realas(AT_TTL="1", AS_LOG_EVENTS="1")
    client = register(stack)
    tokens = code_flow(stack, realas_login, client["client_id"])
    assert tokens["expires_in"] == 1
    time.sleep(2.1)
    expired = call(stack, tokens["access_token"])
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]

    refreshed = httpx.post(
        stack.as_metadata()["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
            "resource": stack.resource,
        },
        timeout=5,
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]  # rotation
    old = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    new = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert new["aud"] == stack.resource  # resource kept on refresh
    assert new["exp"] > old["exp"]
    grants = [e["grant_type"] for e in stack.events() if e["event"] == "grant.success"]
    assert grants == ["authorization_code", "refresh_token"]


def test_device_flow(start_realas: StartRealAS, approve_device: Callable[[str], str]) -> None:
    stack = start_realas()
    meta = stack.as_metadata()
    client = register(
        stack, grant_types=["urn:ietf:params:oauth:grant-type:device_code"], response_types=[]
    )
    device = httpx.post(
        meta["device_authorization_endpoint"],
        data={"client_id": client["client_id"], "scope": "mcp:tools", "resource": stack.resource},
        timeout=5,
    ).json()
    token_request = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device["device_code"],
        "client_id": client["client_id"],
    }
    pending = httpx.post(meta["token_endpoint"], data=token_request, timeout=5)
    assert pending.json()["error"] == "authorization_pending"
    approve_device(device["verification_uri_complete"])
    tokens = httpx.post(meta["token_endpoint"], data=token_request, timeout=5).json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == stack.resource


def test_features_can_be_switched_off(start_realas: StartRealAS) -> None:
    meta = start_realas(DEVICE_FLOW="0", REVOCATION="0", REGISTRATION="0").as_metadata()
    for absent in ("device_authorization_endpoint", "revocation_endpoint", "registration_endpoint"):
        assert absent not in meta
