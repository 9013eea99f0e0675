"""The oidc-provider of the interop suite really runs its default refresh-token policy: plain
HTTP, no library code. Without this, its cases in ``test_interop.py`` would prove nothing.

OpenID Connect Core 1.0 section 11: ``offline_access`` is honoured only with ``prompt=consent``;
oidc-provider's default then issues a refresh token for it, and none otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import follow_to_redirect_uri

from .servers import Interop, start

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:8765/callback"  # nothing listens: the login stops at it
# what registration issued, which an RFC 7592 update must not send back
ISSUED = {
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
}


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Interop, dict[str, Any]]]:
    server = start("oidc-provider", Path(tmp_path_factory.mktemp("oidc-policy")))
    meta = httpx.get(f"{server.issuer}/.well-known/openid-configuration", timeout=10).json()
    yield server, meta
    server.stop()


def tokens(server: Interop, meta: dict[str, Any], **extra: str) -> dict[str, Any]:
    """Register a public client, then one authorization code flow with ``extra``."""
    client = httpx.post(
        meta["registration_endpoint"],
        json={
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        },
        timeout=10,
    ).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid offline_access mcp:tools",
        "state": "s",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "resource": server.resource,
        **extra,
    }
    back = follow_to_redirect_uri(f"{meta['authorization_endpoint']}?{urlencode(query)}")
    code = parse_qs(urlsplit(back).query)["code"][0]
    answer = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "resource": server.resource,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_its_issuer_has_a_path_and_no_registration_management(
    oidc: tuple[Interop, dict[str, Any]],
) -> None:
    server, meta = oidc
    assert meta["issuer"] == server.issuer and urlsplit(server.issuer).path == "/oidc"
    client = httpx.post(
        meta["registration_endpoint"], json={"redirect_uris": [REDIRECT_URI]}, timeout=10
    ).json()
    update = httpx.put(  # RFC 7592: refused (OpenID registration lets a client only read)
        client["registration_client_uri"],
        json={**{k: v for k, v in client.items() if k not in ISSUED}, "client_name": "renamed"},
        headers={"authorization": f"Bearer {client['registration_access_token']}"},
        timeout=10,
    )
    assert update.status_code >= 400, update.text
    root = urlsplit(server.issuer)._replace(path="/.well-known/oauth-authorization-server")
    assert httpx.get(root.geturl(), timeout=10).status_code == 404  # only below its path


def test_offline_access_without_prompt_consent_gives_no_refresh_token(
    oidc: tuple[Interop, dict[str, Any]],
) -> None:
    assert "refresh_token" not in tokens(*oidc)


def test_offline_access_with_prompt_consent_gives_a_refresh_token(
    oidc: tuple[Interop, dict[str, Any]],
) -> None:
    assert tokens(*oidc, prompt="consent")["refresh_token"]
