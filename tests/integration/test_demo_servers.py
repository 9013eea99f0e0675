"""The demo servers behave like real ones: checked here with plain httpx, no library code.

Why: the quickstart's claims ("PKCE verified", "tokens bound to the resource", "refresh
rotated") are only worth something if the servers it runs against would refuse a client that
got them wrong. These tests are that refusal, written against the wire protocol alone.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from demo_servers import DemoServers, start_demo_servers

pytestmark = pytest.mark.integration

OTHER_RESOURCE = "http://127.0.0.1:9/other"
REDIRECT = "http://127.0.0.1:8765/callback"
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServers]:
    servers = start_demo_servers(extra_resources=[OTHER_RESOURCE])
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def register(http: httpx.Client, demo: DemoServers, **extra: Any) -> dict[str, Any]:
    body = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "test",
        **extra,
    }
    response = http.post(f"{demo.issuer}/register", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def authorize(
    http: httpx.Client,
    demo: DemoServers,
    client_id: str,
    challenge: str | None,
    *,
    resource: str | None = None,
    scope: str | None = "mcp:tools",
    redirect_uri: str = REDIRECT,
    method: str = "S256",
) -> dict[str, list[str]]:
    """Run /authorize (auto-approved) and return the redirect's query."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "st-123",
        "code_challenge_method": method,
        "resource": resource or demo.mcp_url,
    }
    if challenge is not None:
        params["code_challenge"] = challenge
    if scope is not None:
        params["scope"] = scope
    response = http.get(f"{demo.issuer}/authorize", params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri.split("?")[0])
    return parse_qs(urlsplit(location).query)


def exchange(
    http: httpx.Client,
    demo: DemoServers,
    client_id: str,
    code: str,
    verifier: str,
    *,
    resource: str | None = "",
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    if resource is not None:
        data["resource"] = resource or demo.mcp_url
    return http.post(f"{demo.issuer}/token", data=data)


def login(
    http: httpx.Client,
    demo: DemoServers,
    scope: str = "mcp:tools",
    resource: str | None = None,
    client: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register (unless given a client), authorize and exchange: the client and the tokens."""
    client = client or register(http, demo)
    verifier, challenge = pkce()
    query = authorize(http, demo, client["client_id"], challenge, scope=scope, resource=resource)
    response = exchange(
        http, demo, client["client_id"], query["code"][0], verifier, resource=resource or ""
    )
    assert response.status_code == 200, response.text
    return client, response.json()


def refresh(
    http: httpx.Client, demo: DemoServers, client_id: str, token: str, **extra: str
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return http.post(f"{demo.issuer}/token", data={**data, **extra})


def mcp_initialize(http: httpx.Client, demo: DemoServers, token: str | None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    return http.post(demo.mcp_url, json=body, headers=headers)


# -- metadata ---------------------------------------------------------------------------------


def test_metadata_issuer_is_the_origin_and_s256_only(demo: DemoServers, http: httpx.Client) -> None:
    meta = http.get(f"{demo.issuer}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == demo.issuer
    assert urlsplit(demo.issuer).hostname == "127.0.0.1"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for key in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
        assert meta[key].startswith(demo.issuer + "/")
    jwks = http.get(meta["jwks_uri"]).json()
    assert [k["alg"] for k in jwks["keys"]] == ["ES256"]
    assert all("d" not in k for k in jwks["keys"])  # public keys only


def test_protected_resource_metadata_and_401_challenge(
    demo: DemoServers, http: httpx.Client
) -> None:
    response = mcp_initialize(http, demo, None)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{demo.resource_metadata_url}"' in challenge
    prm = http.get(demo.resource_metadata_url).json()
    assert prm["resource"] == demo.mcp_url
    assert prm["authorization_servers"] == [demo.issuer]  # no trailing slash: exact issuer
    assert prm["scopes_supported"] == ["mcp:tools"]


# -- registration -------------------------------------------------------------------------------


def test_registration_defaults_follow_rfc_7591(demo: DemoServers, http: httpx.Client) -> None:
    response = http.post(f"{demo.issuer}/register", json={"redirect_uris": [REDIRECT]})
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"]
    assert body["grant_types"] == ["authorization_code"]


@pytest.mark.parametrize(
    "uri", ["http://example.com/callback", "http://127.0.0.1:1/cb#frag", "myapp:/cb"]
)
def test_registration_refuses_non_loopback_http(
    demo: DemoServers, http: httpx.Client, uri: str
) -> None:
    response = http.post(f"{demo.issuer}/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


def test_loopback_redirect_may_use_any_port(demo: DemoServers, http: httpx.Client) -> None:
    client = register(http, demo)
    _, challenge = pkce()
    query = authorize(
        http, demo, client["client_id"], challenge, redirect_uri="http://127.0.0.1:40123/callback"
    )
    assert query["code"]


def test_unknown_client_and_unregistered_redirect_are_not_redirected(
    demo: DemoServers, http: httpx.Client
) -> None:
    _, challenge = pkce()
    base = {"response_type": "code", "code_challenge": challenge, "code_challenge_method": "S256"}
    response = http.get(
        f"{demo.issuer}/authorize",
        params={**base, "client_id": "nobody", "redirect_uri": REDIRECT},
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    client = register(http, demo)
    response = http.get(
        f"{demo.issuer}/authorize",
        params={**base, "client_id": client["client_id"], "redirect_uri": "http://127.0.0.1/x"},
    )
    assert response.status_code == 400
    assert "location" not in response.headers


# -- authorization code + PKCE -----------------------------------------------------------------


def test_pkce_verified_and_token_is_a_signed_jwt_for_the_resource(
    demo: DemoServers, http: httpx.Client
) -> None:
    client = register(http, demo)
    verifier, challenge = pkce()
    query = authorize(http, demo, client["client_id"], challenge)
    assert query["state"] == ["st-123"]
    assert query["iss"] == [demo.issuer]
    response = exchange(http, demo, client["client_id"], query["code"][0], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]
    assert tokens["scope"] == "mcp:tools"
    jwks = http.get(f"{demo.issuer}/jwks.json").json()
    key = jwt.PyJWK.from_dict(jwks["keys"][0]).key
    claims = jwt.decode(
        tokens["access_token"], key, algorithms=["ES256"], audience=demo.mcp_url, issuer=demo.issuer
    )
    assert claims["scope"] == "mcp:tools"
    assert claims["client_id"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == tokens["expires_in"]
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    assert mcp_initialize(http, demo, tokens["access_token"]).status_code == 200


def test_wrong_verifier_refused(demo: DemoServers, http: httpx.Client) -> None:
    client = register(http, demo)
    _, challenge = pkce()
    query = authorize(http, demo, client["client_id"], challenge)
    other_verifier, _ = pkce()
    response = exchange(http, demo, client["client_id"], query["code"][0], other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_authorization_without_s256_challenge_refused(
    demo: DemoServers, http: httpx.Client
) -> None:
    client = register(http, demo)
    verifier, _ = pkce()
    query = authorize(http, demo, client["client_id"], None)
    assert query["error"] == ["invalid_request"]
    assert query["iss"] == [demo.issuer]
    assert query["state"] == ["st-123"]
    query = authorize(http, demo, client["client_id"], verifier[:43], method="plain")
    assert query["error"] == ["invalid_request"]


def test_unknown_scope_refused(demo: DemoServers, http: httpx.Client) -> None:
    client = register(http, demo)
    _, challenge = pkce()
    query = authorize(http, demo, client["client_id"], challenge, scope="mcp:tools admin")
    assert query["error"] == ["invalid_scope"]


def test_resource_required_and_must_match(demo: DemoServers, http: httpx.Client) -> None:
    client = register(http, demo)
    verifier, challenge = pkce()
    code = authorize(http, demo, client["client_id"], challenge)["code"][0]
    response = exchange(http, demo, client["client_id"], code, verifier, resource=OTHER_RESOURCE)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"

    verifier, challenge = pkce()
    code = authorize(http, demo, client["client_id"], challenge)["code"][0]
    response = exchange(http, demo, client["client_id"], code, verifier, resource=None)
    assert response.json()["error"] == "invalid_target"

    _, challenge = pkce()
    query = authorize(
        http, demo, client["client_id"], challenge, resource="http://127.0.0.1:1/unknown"
    )
    assert query["error"] == ["invalid_target"]


def test_code_reuse_refused_and_revokes_what_it_issued(
    demo: DemoServers, http: httpx.Client
) -> None:
    client = register(http, demo)
    verifier, challenge = pkce()
    code = authorize(http, demo, client["client_id"], challenge)["code"][0]
    first = exchange(http, demo, client["client_id"], code, verifier)
    assert first.status_code == 200
    again = exchange(http, demo, client["client_id"], code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # The refresh token from the first exchange is revoked too (OAuth 2.1 4.1.3).
    response = refresh(http, demo, client["client_id"], first.json()["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


def test_code_bound_to_its_client(demo: DemoServers, http: httpx.Client) -> None:
    alice, mallory = register(http, demo), register(http, demo)
    verifier, challenge = pkce()
    code = authorize(http, demo, alice["client_id"], challenge)["code"][0]
    response = exchange(http, demo, mallory["client_id"], code, verifier)
    assert response.json()["error"] == "invalid_grant"


def test_confidential_client_must_authenticate(demo: DemoServers, http: httpx.Client) -> None:
    client = register(http, demo, token_endpoint_auth_method="client_secret_basic")
    verifier, challenge = pkce()
    code = authorize(http, demo, client["client_id"], challenge)["code"][0]
    response = exchange(http, demo, client["client_id"], code, verifier)  # no secret
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"

    verifier, challenge = pkce()
    code = authorize(http, demo, client["client_id"], challenge)["code"][0]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "resource": demo.mcp_url,
    }
    response = http.post(
        f"{demo.issuer}/token",
        data=data,
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text


# -- refresh -----------------------------------------------------------------------------------


def test_refresh_rotates_and_replay_revokes_the_grant(
    demo: DemoServers, http: httpx.Client
) -> None:
    client, tokens = login(http, demo)
    first = tokens["refresh_token"]
    response = refresh(http, demo, client["client_id"], first, resource=demo.mcp_url)
    assert response.status_code == 200, response.text
    second = response.json()["refresh_token"]
    assert second != first
    assert response.json()["access_token"] != tokens["access_token"]
    assert mcp_initialize(http, demo, response.json()["access_token"]).status_code == 200

    replay = refresh(http, demo, client["client_id"], first)
    assert replay.json()["error"] == "invalid_grant"
    # A replayed refresh token means it leaked: the whole grant is gone.
    assert refresh(http, demo, client["client_id"], second).json()["error"] == "invalid_grant"


def test_refresh_cannot_change_resource_or_widen_scope(
    demo: DemoServers, http: httpx.Client
) -> None:
    client, tokens = login(http, demo)
    response = refresh(
        http, demo, client["client_id"], tokens["refresh_token"], resource=OTHER_RESOURCE
    )
    assert response.json()["error"] == "invalid_target"
    response = refresh(
        http, demo, client["client_id"], tokens["refresh_token"], scope="mcp:tools mcp:profile"
    )
    assert response.json()["error"] == "invalid_scope"


def test_refresh_token_bound_to_its_client(demo: DemoServers, http: httpx.Client) -> None:
    _, tokens = login(http, demo)
    mallory = register(http, demo)
    response = refresh(http, demo, mallory["client_id"], tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


def test_revocation_ends_the_grant(demo: DemoServers, http: httpx.Client) -> None:
    client, tokens = login(http, demo)
    response = http.post(
        f"{demo.issuer}/revoke",
        data={"token": tokens["refresh_token"], "client_id": client["client_id"]},
    )
    assert response.status_code == 200
    response = refresh(http, demo, client["client_id"], tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"
    unknown = http.post(
        f"{demo.issuer}/revoke", data={"token": "nonsense", "client_id": client["client_id"]}
    )
    assert unknown.status_code == 200  # RFC 7009 2.2


# -- the MCP server as a resource server ----------------------------------------------------


def test_token_with_wrong_audience_refused(demo: DemoServers, http: httpx.Client) -> None:
    _, tokens = login(http, demo, resource=OTHER_RESOURCE)
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["aud"] == (
        OTHER_RESOURCE
    )
    response = mcp_initialize(http, demo, tokens["access_token"])
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]


def test_expired_or_forged_token_refused(demo: DemoServers, http: httpx.Client) -> None:
    expired = demo.authorization_server.issue_access_token(
        client_id="c", scopes=["mcp:tools"], resource=demo.mcp_url, ttl=-120
    )
    assert mcp_initialize(http, demo, expired).status_code == 401
    forged = jwt.encode(
        {"aud": demo.mcp_url, "iss": demo.issuer, "scope": "mcp:tools", "exp": 2**31, "sub": "x"},
        secrets.token_bytes(32),
        algorithm="HS256",
        headers={"typ": "at+jwt", "kid": demo.authorization_server.key_id},
    )
    assert mcp_initialize(http, demo, forged).status_code == 401


def test_tool_needing_more_scope_answers_403_insufficient_scope(
    demo: DemoServers, http: httpx.Client
) -> None:
    client, tokens = login(http, demo, scope="mcp:tools")
    headers = {**MCP_HEADERS, "authorization": f"Bearer {tokens['access_token']}"}
    init = mcp_initialize(http, demo, tokens["access_token"])
    headers["mcp-session-id"] = init.headers["mcp-session-id"]
    headers["mcp-protocol-version"] = "2025-11-25"
    http.post(
        demo.mcp_url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=headers,
    )
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    add = http.post(
        demo.mcp_url,
        json={**call, "params": {"name": "add", "arguments": {"a": 2, "b": 3}}},
        headers=headers,
    )
    assert add.status_code == 200
    assert '"structuredContent":{"result":5}' in add.text
    whoami = http.post(
        demo.mcp_url, json={**call, "params": {"name": "whoami", "arguments": {}}}, headers=headers
    )
    assert whoami.status_code == 403
    challenge = whoami.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="mcp:profile mcp:tools"' in challenge
    assert f'resource_metadata="{demo.resource_metadata_url}"' in challenge

    # Step-up: the same client logs in again with the wider scope, and the session carries on
    # (the SDK binds a session to client, issuer and subject, so it must be the same client).
    _, wider = login(http, demo, scope="mcp:tools mcp:profile", client=client)
    headers["authorization"] = f"Bearer {wider['access_token']}"
    whoami = http.post(
        demo.mcp_url, json={**call, "params": {"name": "whoami", "arguments": {}}}, headers=headers
    )
    assert whoami.status_code == 200
    assert "demo-user" in whoami.text


# -- consent page --------------------------------------------------------------------------


def test_consent_page_approve_and_deny(demo: DemoServers, http: httpx.Client) -> None:
    server = demo.authorization_server
    server.auto_approve = False
    try:
        client = register(http, demo, client_name="<script>alert(1)</script>")
        _, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": REDIRECT,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": demo.mcp_url,
        }
        for decision, expected in (("approve", "code"), ("deny", "error")):
            page = http.get(f"{demo.issuer}/authorize", params=params)
            assert page.status_code == 200
            assert "Approve" in page.text
            assert "<script>" not in page.text  # the client's name is escaped
            request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
            response = http.post(
                f"{demo.issuer}/authorize/decision",
                data={"request_id": request_id, "decision": decision},
            )
            assert response.status_code == 302
            query = parse_qs(urlsplit(response.headers["location"]).query)
            assert expected in query
            assert query["iss"] == [demo.issuer]
            # A consent request is answered once.
            again = http.post(
                f"{demo.issuer}/authorize/decision",
                data={"request_id": request_id, "decision": "approve"},
            )
            assert again.status_code == 400
        assert query["error"] == ["access_denied"]
    finally:
        server.auto_approve = True
