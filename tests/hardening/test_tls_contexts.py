"""The flow's TLS contexts: built once per process, only for https, and a plain-http request
that turns to TLS fails closed; a sync flow request over TLS still ends at its deadline.

Real TLS servers on 127.0.0.1 with certificates from a test CA made by trustme.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
import trustme

from mcp_client_auth import DiscoveryError, flow_http
from mcp_client_auth.effects import HttpRequest
from mcp_client_auth.tls_contexts import context_for
from tests.servers.processes import listening_socket

pytestmark = pytest.mark.timeout(60)

LIMIT = 2.0
PAUSE = 0.05  # seconds before each trickled byte: 1,200 bytes take a minute


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[tuple[trustme.CA, Path]]:
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    yield authority, path


def tls_server(authority: trustme.CA, serve: object) -> tuple[int, threading.Event]:
    """A TLS listener for 127.0.0.1 that runs ``serve(conn, stop)`` on each connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    sock, stop = listening_socket(), threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    serve(tls, stop)  # type: ignore[operator]
            except (OSError, ssl.SSLError):
                continue

    threading.Thread(target=run, daemon=True).start()
    stop_all = threading.Event()

    def closer() -> None:
        stop_all.wait()
        stop.set()
        sock.close()

    threading.Thread(target=closer, daemon=True).start()
    return sock.getsockname()[1], stop_all


def handshake(context: ssl.SSLContext, port: int) -> None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def hang_up(tls: ssl.SSLSocket, stop: threading.Event) -> None:
    tls.recv(1)


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_a_plain_http_request_gets_a_context_that_completes_no_handshake(
    ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch, library: object
) -> None:
    """Even where the verifying context would trust the server (``SSL_CERT_FILE`` names its
    CA), the context given for an http URL trusts no one: TLS there fails closed."""
    authority, path = ca
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    port, stop = tls_server(authority, hang_up)
    try:
        plain = context_for(f"http://127.0.0.1:{port}/x", True, library)  # type: ignore[arg-type]
        assert isinstance(plain, ssl.SSLContext)
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(plain, port)
        verifying = context_for(f"https://127.0.0.1:{port}/x", True, library)  # type: ignore[arg-type]
        assert isinstance(verifying, ssl.SSLContext)
        handshake(verifying, port)  # the CA from SSL_CERT_FILE, as the library would build it
    finally:
        stop.set()


def test_the_verifying_context_is_built_once_per_setting(
    ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, path = ca
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    first = context_for("https://a.example/x", True, httpx)
    assert context_for("https://b.example/y", True, httpx) is first
    monkeypatch.delenv("SSL_CERT_FILE")  # another setting: another context, that CA not in it
    other = context_for("https://a.example/x", True, httpx)
    assert other is not first
    port, stop = tls_server(authority, hang_up)
    try:
        assert isinstance(other, ssl.SSLContext)
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(other, port)
    finally:
        stop.set()


def test_the_users_own_context_and_false_are_used_as_given() -> None:
    mine = ssl.create_default_context()
    assert context_for("http://127.0.0.1/x", mine, httpx) is mine
    assert context_for("https://a.example/x", mine, httpx) is mine
    assert context_for("https://a.example/x", False, httpx) is False


def test_a_named_proxy_gets_the_verifying_context_for_plain_http_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy itself may be an https one: the request then does TLS to the proxy."""
    monkeypatch.setenv("HTTP_PROXY", "https://127.0.0.1:9")
    assert context_for("http://127.0.0.1/x", True, httpx) is context_for(
        "https://a.example/x", True, httpx
    )


def test_sync_request_over_tls_with_trickled_headers_ends_at_the_deadline(
    ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline's watch shuts down the TLS connection's socket under the blocked read."""
    authority, _ = ca
    monkeypatch.setattr(flow_http, "DEADLINE", LIMIT)
    sent: list[int] = []

    def trickle(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        tls.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1200:
            if stop.wait(PAUSE):
                return
            tls.sendall(bytes([byte]))
            sent.append(1)

    port, stop = tls_server(authority, trickle)
    context = ssl.create_default_context()
    authority.configure_trust(context)
    url = f"https://127.0.0.1:{port}/.well-known/oauth-protected-resource"
    effect = HttpRequest("GET", url, "metadata request", DiscoveryError)
    try:
        with httpx.Client(verify=context) as client, pytest.raises(DiscoveryError) as info:
            flow_http.send_sync(client, effect)
    finally:
        stop.set()
    assert re.search(rf"did not answer the metadata request within {LIMIT:g} s", str(info.value))
    assert 0 < len(sent) < 1200  # the client hung up long before the server was done


def test_a_rewritten_bundle_is_loaded_again(
    ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A CA taken out of ``SSL_CERT_FILE`` is no longer trusted by the next flow client."""
    authority, _ = ca
    bundle = tmp_path / "bundle.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    port, stop = tls_server(authority, hang_up)
    try:
        before = context_for(f"https://127.0.0.1:{port}/x", True, httpx)
        assert isinstance(before, ssl.SSLContext)
        handshake(before, port)
        trustme.CA().cert_pem.write_to_path(str(bundle))  # the old CA removed, another one in
        after = context_for(f"https://127.0.0.1:{port}/x", True, httpx)
        assert isinstance(after, ssl.SSLContext) and after is not before
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(after, port)
    finally:
        stop.set()
