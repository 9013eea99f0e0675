"""DPoP (RFC 9449): the key, its proofs, and the provider using them end to end.

Proofs are checked by the fake servers with PyJWT and an RFC 7638 thumbprint written out in
the test helpers, not with the library's own code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import ConfigurationError, OAuthClientProvider, TokenError, TokenStore
from mcp_client_auth.dpop import DPoPKey, htu
from mcp_client_auth.tokens import ServerRecord, TokenSet

from .fake_servers import ISSUER, RESOURCE, FakeServers, b64, jwk_thumbprint
from .test_provider_flow import COMBOS, call, own_transport, provider

# -- the key and its proofs ----------------------------------------------------------------


def decode(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = jwt.get_unverified_header(proof)
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(header["jwk"]))
    return header, jwt.decode(proof, key, algorithms=["ES256"])  # type: ignore[arg-type]


def test_proof_is_a_valid_es256_jwt_with_the_rfc_9449_claims() -> None:
    key = DPoPKey.generate()
    proof = key.proof(
        "post", "https://mcp.example.com/mcp?x=1#frag", access_token="tok", nonce='n"1'
    )
    header, claims = decode(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert header["jwk"] == key.public_jwk and "d" not in header["jwk"]
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://mcp.example.com/mcp"
    assert claims["ath"] == b64(hashlib.sha256(b"tok").digest())
    assert claims["nonce"] == 'n"1'
    assert isinstance(claims["iat"], int) and isinstance(claims["jti"], str)
    assert jwk_thumbprint(header["jwk"]) == key.thumbprint


def test_every_proof_is_fresh_and_token_requests_have_no_ath() -> None:
    key = DPoPKey.generate()
    jtis = {decode(key.proof("GET", RESOURCE))[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50
    assert "ath" not in decode(key.proof("POST", f"{ISSUER}/token"))[1]
    assert "nonce" not in decode(key.proof("POST", f"{ISSUER}/token"))[1]


def test_htu_drops_query_and_fragment_only() -> None:
    assert htu("https://a.example/p/q?x=1#y") == "https://a.example/p/q"
    assert htu("https://a.example/p#y?x") == "https://a.example/p"
    assert htu("https://a.example/p") == "https://a.example/p"


def test_key_round_trips_through_the_record_and_never_shows_its_secret() -> None:
    key = DPoPKey.generate()
    record = ServerRecord(RESOURCE, issuer=ISSUER, tokens=TokenSet("at", "DPoP"), dpop_key=key)
    data = record.to_dict()
    assert data["dpop_key"]["d"] == key.to_dict()["d"]
    again = ServerRecord.from_dict(json.loads(json.dumps(data)))
    assert again.dpop_key == key
    assert again.tokens is not None and again.tokens.dpop_bound
    # the reloaded key signs proofs that verify against the same thumbprint
    header, _ = decode(again.dpop_key.proof("GET", RESOURCE))
    assert jwk_thumbprint(header["jwk"]) == key.thumbprint
    d = key.to_dict()["d"]
    for text in (repr(key), str(key), repr(record), str(record)):
        assert d not in text and key.to_dict()["x"] not in text
    assert "dpop_key=present" in repr(record)


def test_unusable_stored_keys_are_refused() -> None:
    key = DPoPKey.generate().to_dict()
    other = DPoPKey.generate().to_dict()
    with pytest.raises(ValueError, match="P-256"):
        DPoPKey.from_dict({**key, "crv": "P-384"})
    with pytest.raises(ValueError, match="coordinate"):
        DPoPKey.from_dict({**key, "d": "c2hvcnQ"})
    mismatched = DPoPKey.from_dict({**key, "d": other["d"]})
    with pytest.raises(ValueError, match="does not match"):
        mismatched.proof("GET", RESOURCE)


# -- the provider --------------------------------------------------------------------------


def dpop_servers(**kwargs: Any) -> FakeServers:
    return FakeServers(dpop_algs=["ES256"], **kwargs)


@pytest.mark.parametrize("combo", COMBOS)
def test_dpop_where_advertised_proofs_on_token_and_every_resource_request(combo: str) -> None:
    servers = dpop_servers()
    store = TokenStore.memory()
    auth = provider(servers, store, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    assert call(combo, servers, auth).status_code == 200
    token_requests = [s for s in servers.seen if s.path == "/token"]
    assert len(token_requests) == 1 and "dpop" in token_requests[0].headers
    resource = [s for s in servers.seen if s.url == RESOURCE and "authorization" in s.headers]
    assert len(resource) == 2
    for seen in resource:
        assert seen.headers["authorization"].startswith("DPoP ")
    proofs = [s.headers["dpop"] for s in resource]
    assert len(set(proofs)) == 2  # a fresh proof each time
    record = asyncio.run(store.get(RESOURCE))
    assert record is not None and record.dpop_key is not None
    assert record.tokens is not None and record.tokens.dpop_bound
    assert {p["jkt"] for p in servers.proofs} == {record.dpop_key.thumbprint}


def test_authorization_request_carries_dpop_jkt() -> None:
    servers = dpop_servers()
    urls: list[str] = []

    def login(url: str) -> str:
        urls.append(url)
        return servers.approve(url)

    auth = provider(servers, login=login)
    assert call("httpx2-sync", servers, auth).status_code == 200
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(urls[0]).query)
    assert auth.record is not None and auth.record.dpop_key is not None
    assert query["dpop_jkt"] == [auth.record.dpop_key.thumbprint]


@pytest.mark.parametrize("combo", COMBOS)
def test_token_endpoint_nonce_one_retry_then_kept(combo: str) -> None:
    servers = dpop_servers(as_nonce="as-nonce-1", reported_ttl=0)  # refresh every time
    store = TokenStore.memory()
    auth = provider(servers, store, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    token_requests = [s for s in servers.seen if s.path == "/token"]
    assert len(token_requests) == 2  # use_dpop_nonce, then the retry with it
    assert "nonce" not in decode(token_requests[0].headers["dpop"])[1]
    assert decode(token_requests[1].headers["dpop"])[1]["nonce"] == "as-nonce-1"
    servers.seen.clear()
    assert call(combo, servers, auth).status_code == 200  # the refresh uses the kept nonce
    token_requests = [s for s in servers.seen if s.path == "/token"]
    assert [s.form["grant_type"] for s in token_requests] == ["refresh_token"]


@pytest.mark.parametrize("combo", COMBOS)
def test_resource_nonce_one_retry_then_kept(combo: str) -> None:
    servers = dpop_servers(rs_nonce="rs-nonce-1")
    auth = provider(servers, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    servers.seen.clear()
    assert call(combo, servers, auth).status_code == 200
    assert len(servers.seen) == 1  # the nonce was kept: no second use_dpop_nonce round trip
    assert decode(servers.seen[0].headers["dpop"])[1]["nonce"] == "rs-nonce-1"


def test_resource_nonce_is_retried_once_only() -> None:
    servers = dpop_servers(rs_nonce="rs-nonce-1")
    auth = provider(servers)
    assert call("httpx2-async", servers, auth).status_code == 200
    servers.rs_nonce = "rs-nonce-2"
    servers.seen.clear()
    # the server changes its nonce: one retry with the new one
    assert call("httpx2-async", servers, auth).status_code == 200
    assert [s.path for s in servers.seen] == ["/mcp", "/mcp"]


def test_dpop_false_sends_bearer_tokens_even_where_advertised() -> None:
    servers = dpop_servers()
    auth = provider(servers, dpop=False)
    assert call("httpx-sync", servers, auth).status_code == 200
    assert all("dpop" not in s.headers for s in servers.seen)
    assert auth.tokens is not None and auth.tokens.token_type == "Bearer"
    assert auth.record is not None and auth.record.dpop_key is None


def test_no_dpop_where_not_advertised() -> None:
    servers = FakeServers()
    auth = provider(servers)
    assert call("httpx-async", servers, auth).status_code == 200
    assert all("dpop" not in s.headers for s in servers.seen)
    assert auth.record is not None and auth.record.dpop_key is None


def test_dpop_true_refuses_a_bearer_token() -> None:
    servers = FakeServers(dpop_issue_bearer=True)  # takes proofs, issues bearer tokens
    auth = provider(servers, dpop=True)
    with pytest.raises(TokenError, match="dpop=True"):
        call("httpx2-sync", servers, auth)
    token_requests = [s for s in servers.seen if s.path == "/token"]
    assert len(token_requests) == 1 and "dpop" in token_requests[0].headers


def test_dpop_true_with_an_unsupported_algorithm_is_a_configuration_error() -> None:
    servers = FakeServers(dpop_algs=["RS256"])
    with pytest.raises(ConfigurationError, match="RS256"):
        call("httpx2-sync", servers, provider(servers, dpop=True, combo="httpx2-sync"))
    servers = FakeServers(dpop_algs=["RS256"])  # dpop=None: bearer tokens there
    auth = provider(servers)
    assert call("httpx2-sync", servers, auth).status_code == 200
    assert auth.tokens is not None and auth.tokens.token_type == "Bearer"


@pytest.mark.parametrize("combo", COMBOS)
def test_stored_key_and_tokens_serve_a_new_process(combo: str) -> None:
    servers = dpop_servers(reported_ttl=0)
    store = TokenStore.memory()
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    first = asyncio.run(store.get(RESOURCE))
    assert first is not None and first.dpop_key is not None
    servers.seen.clear()
    # a new provider: loads the record, refreshes with a proof of the same key
    assert call(combo, servers, provider(servers, store, combo=combo)).status_code == 200
    assert [s.path for s in servers.seen] == ["/token", "/mcp"]
    assert servers.proofs[-2]["jkt"] == servers.proofs[-1]["jkt"] == first.dpop_key.thumbprint


def test_valid_dpop_token_request_path_touches_no_store() -> None:
    servers = dpop_servers()

    class CountingStore(TokenStore):
        calls = 0

        async def get(self, resource: str) -> Any:
            CountingStore.calls += 1
            return await super().get(resource)

        def lock(self, resource: str) -> Any:
            CountingStore.calls += 1
            return super().lock(resource)

    from key_value.aio.stores.memory import MemoryStore

    store = CountingStore(MemoryStore())
    transport = httpx2.MockTransport(servers.handler)
    auth = provider(servers, store, transport=transport)

    async def run() -> None:
        async with httpx2.AsyncClient(transport=transport, auth=auth) as client:
            assert (await client.get(RESOURCE)).status_code == 200
            before = CountingStore.calls
            for _ in range(20):
                assert (await client.get(RESOURCE)).status_code == 200
            assert CountingStore.calls == before

    asyncio.run(run())


def test_no_token_proof_or_key_in_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    servers = dpop_servers(as_nonce="n1", rs_nonce="n2")
    caplog.set_level(logging.DEBUG)
    auth = provider(servers)
    assert call("httpx2-sync", servers, auth).status_code == 200
    assert auth.record is not None and auth.record.dpop_key is not None
    secrets = [auth.record.dpop_key.to_dict()["d"]]
    secrets += [s.headers["dpop"] for s in servers.seen if "dpop" in s.headers]
    secrets += list(servers.access)
    text = caplog.text + repr(auth.record) + repr(auth.tokens)
    assert all(secret not in text for secret in secrets)


def test_dpop_key_is_encrypted_at_rest_by_the_default_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from mcp_client_auth.store import keys

    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("HOME", str(tmp_path))
    keys.forget_keys()
    try:
        servers = dpop_servers()
        store = TokenStore.default(tmp_path / "store")
        auth = provider(servers, store)
        assert call("httpx2-async", servers, auth).status_code == 200
        record = auth.record
        assert record is not None and record.dpop_key is not None
        d = record.dpop_key.to_dict()["d"]
        files = [path for path in (tmp_path / "store").rglob("*") if path.is_file()]
        assert files
        x = record.dpop_key.to_dict()["x"]
        for path in files:
            data = path.read_bytes()
            assert d.encode() not in data and x.encode() not in data, path
        again = asyncio.run(TokenStore.default(tmp_path / "store").get(RESOURCE))
        assert again is not None and again.dpop_key == record.dpop_key
    finally:
        keys.forget_keys()


# -- which resources get DPoP-bound tokens -----------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS)
def test_bearer_only_resource_gets_bearer_tokens_though_the_server_offers_dpop(combo: str) -> None:
    """The mcp SDK's resource servers take only Bearer, while oidc-provider offers DPoP."""
    servers = dpop_servers(rs_dpop=False)
    auth = provider(servers, combo=combo)
    assert call(combo, servers, auth).status_code == 200
    assert all("dpop" not in s.headers for s in servers.seen)
    assert auth.tokens is not None and auth.tokens.token_type == "Bearer"
    assert auth.record is not None and auth.record.dpop_key is None


@pytest.mark.parametrize("dpop", [None, True])
def test_dpop_true_binds_tokens_where_the_server_does_not_advertise_it(
    dpop: bool | None,
) -> None:
    servers = FakeServers(rs_dpop=True)  # the AS takes proofs without advertising DPoP
    auth = provider(servers, dpop=dpop)
    assert call("httpx-sync", servers, auth).status_code == 200
    assert auth.tokens is not None and auth.tokens.dpop_bound is bool(dpop)


def test_resource_metadata_naming_dpop_binds_tokens_without_a_request() -> None:
    servers = dpop_servers(prm_dpop_algs=["ES256"])
    tokens = provider(servers).get_token()  # no challenge seen: the PRM says DPoP
    assert tokens.dpop_bound


def test_bearer_tokens_from_get_token_move_to_dpop_when_the_resource_asks(
    httpx_mock: HTTPXMock,
) -> None:
    servers = dpop_servers()  # the resource takes DPoP, its metadata does not say so
    httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)
    store = TokenStore.memory()
    first = provider(servers, store).get_token()
    assert first.token_type == "Bearer"  # nothing said the resource takes DPoP
    servers.dpop_required = True  # and it now refuses bearer tokens
    servers.seen.clear()
    auth = provider(servers, store)
    assert call("httpx2-async", servers, auth).status_code == 200
    # the DPoP challenge bound the refresh to a new key: no second login
    assert [s.path for s in servers.seen] == [
        "/mcp",
        "/.well-known/oauth-protected-resource/mcp",
        "/token",
        "/mcp",
    ]
    assert "dpop" in servers.seen[2].headers
    assert auth.tokens is not None and auth.tokens.dpop_bound


def test_dpop_tokens_refused_with_a_bearer_challenge_fall_back_to_bearer() -> None:
    """A stored DPoP-bound token for a resource that turns out to take only Bearer."""
    servers = dpop_servers()
    store = TokenStore.memory()
    assert (
        call("httpx2-sync", servers, provider(servers, store, combo="httpx2-sync")).status_code
        == 200
    )
    servers.rs_dpop = False  # the resource (now) says only Bearer
    servers.seen.clear()
    auth = provider(servers, store)
    assert call("httpx2-sync", servers, auth).status_code == 200
    assert auth.tokens is not None and auth.tokens.token_type == "Bearer"
    assert auth.record is not None and auth.record.dpop_key is None
    assert [s.form["grant_type"] for s in servers.seen if s.path == "/token"] == [
        "authorization_code"
    ]


class SameOriginServers:
    """A resource and its authorization server on one origin, each demanding its own DPoP
    nonce; counts the use_dpop_nonce refusals each gives."""

    origin = "https://mcp.example.com"

    def __init__(self) -> None:
        self.refusals = {"authorization server": 0, "resource": 0}
        self.codes: set[str] = set()

    def approve(self, url: str) -> str:
        query = parse_qs(urlsplit(url).query)
        self.codes.add(code := "code-" + query["state"][0])
        redirect = query["redirect_uri"][0]
        return f"{redirect}?code={code}&state={query['state'][0]}&iss={self.origin}"

    def handler(self, request: Any) -> Any:
        module = __import__(type(request).__module__.split(".")[0])
        request.read()
        url = str(request.url)
        path = urlsplit(url).path

        def reply(status: int, doc: Any = None, headers: dict[str, str] | None = None) -> Any:
            return module.Response(status, headers=headers or {}, json=doc)

        def nonce_of(proof: str | None) -> Any:
            return (
                jwt.decode(proof, options={"verify_signature": False}).get("nonce")
                if proof
                else None
            )

        if path == "/.well-known/oauth-protected-resource/mcp":
            return reply(200, {"resource": RESOURCE, "authorization_servers": [self.origin]})
        if path == "/.well-known/oauth-authorization-server":
            return reply(
                200,
                {
                    "issuer": self.origin,
                    "authorization_endpoint": f"{self.origin}/authorize",
                    "token_endpoint": f"{self.origin}/token",
                    "code_challenge_methods_supported": ["S256"],
                    "dpop_signing_alg_values_supported": ["ES256"],
                    "authorization_response_iss_parameter_supported": True,
                },
            )
        if path == "/token":
            if nonce_of(request.headers.get("dpop")) != "as-nonce":
                self.refusals["authorization server"] += 1
                return reply(400, {"error": "use_dpop_nonce"}, {"dpop-nonce": "as-nonce"})
            form = parse_qs(request.content.decode())
            grant = form["grant_type"][0]
            assert grant == "refresh_token" or form["code"][0] in self.codes
            # expires_in 0: seen as expired at once, so every request refreshes first
            doc = {"access_token": "at", "token_type": "DPoP", "expires_in": 0}
            return reply(200, {**doc, "refresh_token": "rt"})
        if path == "/mcp":
            if not request.headers.get("authorization", "").startswith("DPoP "):
                return reply(401, headers={"www-authenticate": "DPoP"})
            if nonce_of(request.headers.get("dpop")) != "rs-nonce":
                self.refusals["resource"] += 1
                challenge = {"www-authenticate": 'DPoP error="use_dpop_nonce"'}
                return reply(401, None, {**challenge, "dpop-nonce": "rs-nonce"})
            return reply(200, {"ok": True})
        return reply(404)


@pytest.mark.parametrize("combo", COMBOS)
def test_dpop_nonces_of_a_resource_and_its_server_on_one_origin_are_kept_apart(
    combo: str,
) -> None:
    """Each refresh (the token endpoint) then request (the resource) alternates between the
    two: one use_dpop_nonce refusal from each, the first time only."""
    servers = SameOriginServers()
    auth = OAuthClientProvider(
        RESOURCE,
        store=TokenStore.memory(),
        login=servers.approve,
        client_id="pre-registered",
        transport=own_transport(servers),
    )
    for _ in range(3):
        assert call(combo, servers, auth).status_code == 200  # type: ignore[arg-type]
    assert servers.refusals == {"authorization server": 1, "resource": 1}
