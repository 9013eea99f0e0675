"""A server that answers too slowly to ever time out: the flow's requests have a total deadline.

The read timeout bounds each wait on the socket, so a server that trickles its answer a byte at
a time, each byte well inside it, could hold a discovery or a refresh for hours. Every flow
request must end within ``flow_http.DEADLINE`` (here cut to a few seconds), as the step's
typed error naming the URL and the limit. Real servers on 127.0.0.1: uvicorn trickling a body,
and a listening socket that never answers at all (connect succeeds, no headers ever come).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

from mcp_client_auth import DiscoveryError, OAuthClientProvider, TokenError, TokenStore, flow_http
from mcp_client_auth.effects import HttpRequest
from tests.servers.processes import listening_socket

from .drive import assert_clean, stored
from .hostile import Hostile, Reply
from .test_own_client import get_through, live

__all__ = ["live"]  # the fixture, shared with test_own_client

pytestmark = pytest.mark.timeout(60)

LIMIT = 2.0  # the deadline in these tests; a correct server answers each request well inside
PAUSE = 0.05  # seconds before each trickled byte: 1,200 bytes take a minute
COMBOS = [("httpx", "sync"), ("httpx", "async"), ("httpx2", "sync"), ("httpx2", "async")]


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_http, "DEADLINE", LIMIT)


def trickled(sent: list[int], size: int = 1200) -> Reply:
    """A JSON-looking answer that takes ``size * PAUSE`` seconds; ``sent`` counts its bytes."""

    def body() -> Iterator[bytes]:
        for _ in range(size):
            sent.append(1)
            yield b" "

    return Reply(200, body(), [("content-type", "application/json")], pause=PAUSE)


def within(limit: float) -> str:
    return rf"did not answer the .* within {limit:g} s"


@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_trickled_metadata_ends_at_the_deadline(live: Hostile, lib: str, mode: str) -> None:
    sent: list[int] = []
    live.hooks["prm"] = lambda seen: trickled(sent)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        get_through(lib, mode, auth, live.resource)
    assert_clean(info.value, DiscoveryError, re.escape(live.prm_url) + " " + within(LIMIT))
    assert 0 < len(sent) < 1200  # the client hung up long before the server was done
    assert live.token_requests() == [] and live.logins == 0


@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_trickled_refresh_ends_at_the_deadline_and_keeps_the_tokens(
    live: Hostile, lib: str, mode: str
) -> None:
    store = TokenStore.memory()
    auth = OAuthClientProvider(live.resource, store=store, login=live.approve)
    assert get_through(lib, mode, auth, live.resource) == 200
    before = stored(store, live)
    sent: list[int] = []
    live.on_grant("refresh_token", lambda seen: trickled(sent))
    later = OAuthClientProvider(
        live.resource, store=store, login=live.approve, clock=lambda: time.time() + 7200
    )
    with pytest.raises(TokenError) as info:
        get_through(lib, mode, later, live.resource)
    assert_clean(
        info.value,
        TokenError,
        re.escape(live.endpoint("token")) + " " + within(LIMIT) + r".*kept.*try again later",
        live.secrets,
    )
    assert 0 < len(sent) < 1200
    assert stored(store, live).tokens == before.tokens
    assert live.logins == 1  # no login over a slow server


@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_server_that_never_answers_ends_at_the_deadline(live: Hostile, lib: str, mode: str) -> None:
    """The authorization server's port accepts connections (the kernel's backlog) but nobody
    ever reads the request: the wait for the headers ends at the deadline too."""
    silent = listening_socket()
    try:
        issuer, error = discovery_failure_at(silent, live, lib, mode)
    finally:
        silent.close()
    assert_clean(error, DiscoveryError, re.escape(issuer) + r"/\S+ " + within(LIMIT))


def discovery_failure_at(
    sock: socket.socket, live: Hostile, lib: str, mode: str
) -> tuple[str, DiscoveryError]:
    """Point the resource's metadata at an authorization server on ``sock``; the error the
    request through the provider then ends in, and that server's URL."""
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    live.prm_extra["authorization_servers"] = [issuer]
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        get_through(lib, mode, auth, live.resource)
    return issuer, info.value


def test_get_token_ends_at_the_deadline(live: Hostile) -> None:
    """The standalone driver (``get_token``, the command line) has the same deadline."""
    sent: list[int] = []
    live.hooks["asm"] = lambda seen: trickled(sent)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        auth.get_token()
    assert_clean(info.value, DiscoveryError, re.escape(live.asm_url) + " " + within(LIMIT))


def trickle_headers(sock: socket.socket, stop: threading.Event) -> None:
    """Answer every connection with a status line and headers sent a byte every PAUSE s."""
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1200
            for byte in head:
                if stop.wait(PAUSE):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break


@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_trickled_headers_end_at_the_deadline(live: Hostile, lib: str, mode: str) -> None:
    """Headers a byte at a time: each read is quick, so only a total deadline ends the wait,
    in the sync driver too (its deadline's watch shuts the connection down)."""
    sock, stop = listening_socket(), threading.Event()
    server = threading.Thread(target=trickle_headers, args=(sock, stop), daemon=True)
    server.start()
    try:
        issuer, error = discovery_failure_at(sock, live, lib, mode)
    finally:
        stop.set()
        sock.close()
        server.join(10)
    assert_clean(error, DiscoveryError, re.escape(issuer) + r"/\S+ " + within(LIMIT))


def test_a_sync_body_read_ending_past_the_deadline_is_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync client (a sync-only transport of the user's) bounds each body read by the read
    timeout only; one that ends past the deadline still reports the deadline, and for a
    refresh that the tokens are kept."""
    # Wide margins, for a busy machine: a byte every `gap` s, 2 s inside the read timeout;
    # both bytes 2 s inside the deadline; the silent read then ends 1 s past it.
    timeout, deadline, gap = 3.0, 4.0, 1.0
    monkeypatch.setattr(flow_http, "TIMEOUT", timeout)
    monkeypatch.setattr(flow_http, "DEADLINE", deadline)
    sock, stop = listening_socket(), threading.Event()

    def answer_then_stall() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(2):  # each byte inside the read timeout, both inside the deadline
                if stop.wait(gap):
                    return
                conn.sendall(b"a")
            stop.wait(30)  # then silence: the next read times out, past the deadline

    server = threading.Thread(target=answer_then_stall, daemon=True)
    server.start()
    effect = HttpRequest(
        "POST", f"http://127.0.0.1:{sock.getsockname()[1]}/token", "token refresh", TokenError
    )
    try:
        with (
            httpx.Client(transport=httpx.HTTPTransport()) as client,
            pytest.raises(TokenError) as info,
        ):
            flow_http.send_sync(client, effect)
    finally:
        stop.set()
        sock.close()
        server.join(10)
    assert_clean(info.value, TokenError, within(deadline) + r"\. The stored tokens are kept")


def answer_then_trickle(sock: socket.socket, stop: threading.Event, connections: list[int]) -> None:
    """One kept-alive connection: the first request answered at once, the second's head sent a
    byte every PAUSE s (the connection a flow run reuses for its next request)."""
    conn, _ = sock.accept()
    connections.append(1)
    with conn:
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
        )
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1200:
            if stop.wait(PAUSE):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_a_kept_alive_connection_reused_ends_at_the_deadline(library: Any) -> None:
    """A run's second request to one origin goes out on the first one's connection, which no
    new-connection event announces: its trickled head still ends at the deadline."""
    sock, stop, connections = listening_socket(), threading.Event(), []
    server = threading.Thread(target=answer_then_trickle, args=(sock, stop, connections))
    server.daemon = True
    server.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    first = HttpRequest("GET", base + "/.well-known/oauth-protected-resource", "x", DiscoveryError)
    second = HttpRequest(
        "POST", base + "/token", "token refresh", TokenError, body=b"grant_type=refresh_token"
    )
    try:
        with library.Client() as client:
            assert flow_http.send_sync(client, first).status_code == 200
            with pytest.raises(TokenError) as info:
                flow_http.send_sync(client, second)
    finally:
        stop.set()
        sock.close()
        server.join(10)
    assert connections == [1]  # the second request did reuse the first one's connection
    assert_clean(info.value, TokenError, re.escape(base) + "/token " + within(LIMIT))


def test_a_name_that_takes_long_to_resolve_ends_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolving a name cannot be interrupted; the caller stops waiting at the deadline. The
    machine's resolver cannot be slowed from here, so ``getaddrinfo`` is replaced by one that
    answers only once the request has ended: a sender that waited for it would never end."""
    real = socket.getaddrinfo
    ended = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        ended.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    effect = HttpRequest("GET", "http://localhost:9/x", "metadata request", DiscoveryError)
    try:
        with httpx.Client() as client, pytest.raises(DiscoveryError) as info:
            flow_http.send_sync(client, effect)
    finally:
        ended.set()
    assert_clean(info.value, DiscoveryError, "http://localhost:9/x " + within(LIMIT))
