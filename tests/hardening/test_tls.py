"""TLS: a real HTTPS protected resource and authorization server on 127.0.0.1 (uvicorn, with
certificates from a test CA made by trustme).

The provider verifies certificates by default. The flow's own requests (discovery, registration,
token, revocation) always go through the provider's own client, inside an ``httpx``/``httpx2``
client too: it verifies with the provider's ``verify=`` (by default the system's CAs, or
``SSL_CERT_FILE``), never with the caller's client's TLS settings, which apply to the caller's
own requests only. A certificate that does not verify (unknown CA, wrong host name, expired)
stops the flow before any secret is sent, with an error that names the server.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import trustme

from mcp_client_auth import (
    DiscoveryError,
    MCPAuthError,
    OAuthClientProvider,
    TokenError,
    TokenStore,
)
from tests.servers.in_thread import Served, serve_in_thread
from tests.servers.processes import listening_socket

from .drive import assert_clean, stored
from .hostile import Hostile

pytestmark = pytest.mark.timeout(60)

VERIFY_FAILED = r"certificate verify failed|CERTIFICATE_VERIFY_FAILED"


@dataclass
class Stack:
    servers: Hostile
    ca: trustme.CA
    ca_file: Path

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Factory: a resource and an authorization server on their own HTTPS ports.

    ``as_cert`` chooses the authorization server's certificate: ``good`` (the CA, for
    127.0.0.1), ``untrusted`` (another CA), ``wrong-host`` (the CA, for another name),
    ``expired`` (the CA, expired yesterday).
    """
    started: list[Served] = []
    ca = trustme.CA()
    other_ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def cert_file(name: str, kind: str) -> str:
        if kind == "good":
            leaf = ca.issue_cert("127.0.0.1")
        elif kind == "untrusted":
            leaf = other_ca.issue_cert("127.0.0.1")
        elif kind == "wrong-host":
            leaf = ca.issue_cert("not-this-host.example")
        elif kind == "expired":
            now = datetime.datetime.now(datetime.timezone.utc)
            leaf = ca.issue_cert(
                "127.0.0.1",
                not_before=now - datetime.timedelta(days=30),
                not_after=now - datetime.timedelta(days=1),
            )
        else:
            raise ValueError(kind)
        path = tmp_path / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
        return str(path)

    def start(as_cert: str = "good", token_cert: str | None = None) -> Stack:
        rs_sock, as_sock = listening_socket(), listening_socket()
        servers = Hostile(
            resource=f"https://127.0.0.1:{rs_sock.getsockname()[1]}/mcp",
            issuer=f"https://127.0.0.1:{as_sock.getsockname()[1]}",
        )
        started.append(serve_in_thread(servers.asgi, rs_sock, certfile=cert_file("rs", "good")))
        started.append(serve_in_thread(servers.asgi, as_sock, certfile=cert_file("as", as_cert)))
        if token_cert is not None:  # the token endpoint on a third origin
            token_sock = listening_socket()
            url = f"https://127.0.0.1:{token_sock.getsockname()[1]}/token"
            servers.asm_extra["token_endpoint"] = url
            servers.hooks["other"] = lambda seen: servers.correct("token", seen)
            started.append(
                serve_in_thread(servers.asgi, token_sock, certfile=cert_file("tk", token_cert))
            )
        return Stack(servers, ca, ca_file)

    yield start
    for server in started:
        server.stop()


def as_requests(servers: Hostile) -> list[str]:
    return [s.url for s in servers.seen if servers.route(s) not in ("resource", "prm")]


# -- the provider inside the caller's client ---------------------------------------------------


@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
def test_whole_flow_over_real_tls(tls: Callable[..., Stack], lib: str) -> None:
    stack = tls()
    store = TokenStore.memory()
    auth = OAuthClientProvider(
        stack.servers.resource,
        store=store,
        login=stack.servers.approve,
        verify=stack.context(),  # the provider's own client trusts the test CA too
    )
    module: Any = httpx if lib == "httpx" else httpx2

    async def run() -> int:
        async with module.AsyncClient(auth=auth, verify=stack.context(), trust_env=False) as c:
            return int((await c.get(stack.servers.resource)).status_code)

    assert asyncio.run(run()) == 200
    with module.Client(auth=auth, verify=stack.context(), trust_env=False) as client:
        assert client.get(stack.servers.resource).status_code == 200
    assert stored(store, stack.servers).tokens is not None


def test_untrusted_authorization_server_stops_the_flow(tls: Callable[..., Stack]) -> None:
    """The provider trusts the test CA, which signed the resource's certificate but not the
    authorization server's: discovery gets the resource's metadata, then the first request to
    the authorization server fails its TLS handshake, before any secret exists or is sent."""
    stack = tls(as_cert="untrusted")
    store = TokenStore.memory()
    auth = OAuthClientProvider(
        stack.servers.resource, store=store, login=stack.servers.approve, verify=stack.context()
    )
    client = httpx.Client(auth=auth, verify=stack.context(), trust_env=False)
    with client, pytest.raises(MCPAuthError) as info:
        client.get(stack.servers.resource)
    assert stack.servers.asm_url in str(info.value)
    assert stack.servers.count("prm") == 1  # the resource's metadata came through
    assert as_requests(stack.servers) == []
    assert stack.servers.logins == 0
    record = stored(store, stack.servers)
    assert record is None or record.tokens is None


@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
def test_untrusted_authorization_server_is_a_typed_error(
    tls: Callable[..., Stack], lib: str
) -> None:
    stack = tls(as_cert="untrusted")
    auth = OAuthClientProvider(
        stack.servers.resource,
        store=TokenStore.memory(),
        login=stack.servers.approve,
        verify=stack.context(),
    )
    module: Any = httpx if lib == "httpx" else httpx2
    client = module.Client(auth=auth, verify=stack.context(), trust_env=False)
    with client, pytest.raises(MCPAuthError) as info:
        client.get(stack.servers.resource)
    assert_clean(
        info.value,
        DiscoveryError,
        rf"could not reach {re.escape(stack.servers.asm_url)} .*({VERIFY_FAILED})",
    )
    assert stack.servers.count("prm") == 1


# -- the provider's own client (get_token, login, logout, the command line) -------------


def test_get_token_verifies_against_the_system_cas_by_default(tls: Callable[..., Stack]) -> None:
    stack = tls()
    auth = OAuthClientProvider(
        stack.servers.resource, store=TokenStore.memory(), login=stack.servers.approve
    )
    with pytest.raises(MCPAuthError) as info:
        auth.get_token()
    assert_clean(
        info.value,
        DiscoveryError,
        rf"could not reach https://127\.0\.0\.1:\d+/\.well-known/.*({VERIFY_FAILED})",
    )
    assert stack.servers.seen == []  # not one HTTP request got through the handshake


def test_get_token_trusts_ssl_cert_file(
    tls: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = tls()
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca_file))
    auth = OAuthClientProvider(
        stack.servers.resource, store=TokenStore.memory(), login=stack.servers.approve
    )
    assert auth.get_token().access_token in stack.servers.secrets


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("untrusted", VERIFY_FAILED),
        ("wrong-host", rf"{VERIFY_FAILED}|mismatch|hostname"),
        ("expired", rf"{VERIFY_FAILED}|expired"),
    ],
)
def test_bad_authorization_server_certificate_is_a_clear_error(
    tls: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch, kind: str, pattern: str
) -> None:
    stack = tls(as_cert=kind)
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca_file))
    store = TokenStore.memory()
    auth = OAuthClientProvider(stack.servers.resource, store=store, login=stack.servers.approve)
    with pytest.raises(MCPAuthError) as info:
        auth.get_token()
    assert_clean(
        info.value, DiscoveryError, rf"could not reach {stack.servers.asm_url}.*({pattern})"
    )
    assert as_requests(stack.servers) == []
    assert stack.servers.logins == 0


def test_code_is_never_sent_over_an_unverified_connection(
    tls: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metadata from a good server, a token endpoint with a bad certificate: the login
    happens, but the code and the verifier never cross the failed handshake."""
    stack = tls(token_cert="untrusted")
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca_file))
    store = TokenStore.memory()
    auth = OAuthClientProvider(stack.servers.resource, store=store, login=stack.servers.approve)
    with pytest.raises(MCPAuthError) as info:
        auth.get_token()
    assert_clean(
        info.value,
        TokenError,
        rf"could not reach .*/token.*({VERIFY_FAILED})",
        stack.servers.secrets,
    )
    assert stack.servers.logins == 1
    assert stack.servers.token_requests() == []  # the handshake failed: nothing was received
    assert stored(store, stack.servers).tokens is None
