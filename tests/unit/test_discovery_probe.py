"""A login that has not seen the resource answer (``login()``, ``mcp-client-auth login``) and
finds no metadata asks the resource once, without a token, before it concludes anything.

What is proved: a resource that names its metadata only in its challenge (a non-standard
``resource_metadata`` URL) is found through that probe; a request that did meet a 401 sends no
probe (the conformance suite's 2025-03-26 scenarios see the same requests as before); the probe
carries no token.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_httpx import HTTPXMock

from mcp_client_auth import OAuthClientProvider, TokenStore

from .fake_servers import ISSUER, PRM_URL, RESOURCE, FakeServers

ELSEWHERE = "https://mcp.example.com/metadata/mcp.json"  # named only in the challenge


def serve(httpx_mock: HTTPXMock) -> tuple[FakeServers, list[tuple[str, str]]]:
    """The fake servers, with the resource's metadata moved to ELSEWHERE."""
    servers = FakeServers(prm_status=404)
    seen: list[tuple[str, str]] = []

    def handler(request: Any) -> Any:
        url = str(request.url)
        seen.append((request.method, url))
        if url == ELSEWHERE:
            document = {"resource": RESOURCE, "authorization_servers": [ISSUER]}
            return _json(request, 200, document)
        response = servers.handler(request)
        if url.startswith(RESOURCE) and response.status_code == 401:
            assert "authorization" not in request.headers  # the probe carries no token
            challenge = f'Bearer resource_metadata="{ELSEWHERE}"'
            return _json(request, 401, {}, {"www-authenticate": challenge})
        return response

    httpx_mock.add_callback(handler, is_reusable=True, is_optional=True)
    return servers, seen


def _json(request: Any, status: int, doc: Any, headers: dict[str, str] | None = None) -> Any:
    module = __import__(type(request).__module__.split(".")[0])
    return module.Response(
        status,
        headers={"content-type": "application/json", **(headers or {})},
        content=json.dumps(doc).encode(),
    )


def test_a_login_finds_metadata_named_only_in_the_challenge(httpx_mock: HTTPXMock) -> None:
    servers, seen = serve(httpx_mock)
    provider = OAuthClientProvider(RESOURCE, store=TokenStore.memory(), login=servers.approve)
    tokens = provider.login()
    assert tokens.access_token in servers.access
    assert ("POST", RESOURCE) in seen  # the probe
    assert seen.index(("GET", PRM_URL)) < seen.index(("POST", RESOURCE))
    assert seen.index(("POST", RESOURCE)) < seen.index(("GET", ELSEWHERE))
    assert provider.record is not None and provider.record.issuer == ISSUER


def test_a_request_that_met_a_401_sends_no_probe(httpx_mock: HTTPXMock) -> None:
    import httpx

    servers, seen = serve(httpx_mock)
    provider = OAuthClientProvider(RESOURCE, store=TokenStore.memory(), login=servers.approve)
    with httpx.Client(auth=provider) as client:
        assert client.post(RESOURCE, json={}).status_code == 200
    unauthenticated = [
        s
        for s in servers.seen
        if s.url == RESOURCE and "authorization" not in {k.lower() for k in s.headers}
    ]
    assert len(unauthenticated) == 1  # the request itself, not a probe besides it
    assert ("GET", ELSEWHERE) in seen
