"""``mcp-client-auth proxy`` against a server that speaks only the legacy HTTP+SSE transport
(protocol 2024-11-05): the ``mcp`` SDK's own ``sse_app`` behind the real authorization server.

The server (``mcp_server.py --legacy-sse``) has two event streams sharing one messages
endpoint, ``/mcp/messages/``: ``/mcp`` (the URL covers the endpoint, so the token may follow
the host's messages there) and ``/mcp/sse`` (the SDK's naming: the endpoint is beside the
stream, outside what the token is for, so the proxy must refuse rather than send it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.client import Client

from .harness import Stack, start_stack
from .proxy_host import (
    HostSetup,
    RawHost,
    checked_tools,
    fake_browser,
    fastmcp_host_session,
    v1_host_session,
)
from .test_proxy import authorizations, sdk_params, server_requests, text_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("legacy-sse"), server_args=("--legacy-sse",), AT_TTL="600"
    )
    yield stack
    stack.stop()


@pytest.fixture
def host(tmp_path: Path, store_key: str) -> HostSetup:
    return HostSetup(tmp_path / "store", store_key, fake_browser(tmp_path))


async def legacy_session(
    setup: HostSetup, url: str, *extra: str, mode: str = "legacy"
) -> tuple[list[str], str]:
    """The SDK's stdio host through the proxy: the handshake, the tool list, one tool call.
    ``mode="auto"``: the client probes ``server/discover`` before the handshake."""
    async with Client(sdk_params(setup, url, *extra), mode=mode) as client:
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"text": "through the old transport"})
        assert not result.is_error, text_of(result)
        return sorted(t.name for t in tools.tools), text_of(result)


@pytest.mark.parametrize(
    ("transport", "mode"),
    [
        ("sse-only", "legacy"),
        ("http-first", "legacy"),
        ("sse-first", "legacy"),
        ("http-first", "auto"),
        ("sse-first", "auto"),
    ],
)
def test_sdk_host_through_the_proxy_to_a_legacy_sse_server(
    transport: str, mode: str, legacy: Stack, host: HostSetup
) -> None:
    before = authorizations(legacy)
    seen = len(server_requests(legacy))
    tools, echoed = asyncio.run(
        legacy_session(host, legacy.url, "--transport", transport, mode=mode)
    )
    assert {"echo", "whoami", "save_note"} <= set(tools)
    assert echoed == "through the old transport"
    assert authorizations(legacy) == before + 1  # one browser login, then the token

    requests = server_requests(legacy)[seen:]
    assert_relayed_over_the_legacy_transport(requests)
    if transport == "http-first":  # the streamable POST was refused, then the fallback
        refused = [r for r in requests if r["method"] == "POST" and r["path"] == "/mcp"]
        assert refused and refused[-1]["status"] == 405


def test_fastmcp_host_through_the_proxy_to_a_legacy_sse_server(
    legacy: Stack, host: HostSetup
) -> None:
    seen = len(server_requests(legacy))
    tools, echoed = asyncio.run(fastmcp_host_session(host, legacy.url, "fast and old"))
    assert {"echo", "whoami", "save_note"} <= set(tools)
    assert echoed == "fast and old"
    assert_relayed_over_the_legacy_transport(server_requests(legacy)[seen:])


def test_mcp_v1_host_through_the_proxy_to_a_legacy_sse_server(
    legacy: Stack, host: HostSetup, mcp_v1: str
) -> None:
    """The mcp 1.x stdio client (its own environment) as the host, the default transport
    choice (streamable HTTP first, then the fallback)."""
    seen = len(server_requests(legacy))
    answered = v1_host_session(mcp_v1, host, legacy.url)
    assert answered["text"] == "from mcp 1.x"
    assert "echo" in answered["tools"]
    assert_relayed_over_the_legacy_transport(server_requests(legacy)[seen:])


def assert_relayed_over_the_legacy_transport(requests: list[dict[str, Any]]) -> None:
    """Every message went as a POST to the messages endpoint with a valid token, while the
    event stream carried the answers."""
    streams = [r for r in requests if r["method"] == "GET" and r["path"] == "/mcp"]
    posts = [r for r in requests if r["method"] == "POST" and r["path"] == "/mcp/messages/"]
    assert streams and streams[-1]["status"] == 200
    assert len(posts) >= 3, requests  # the handshake (or discovery), the list, the call
    assert all(p["status"] == 202 for p in posts), posts  # each carried a valid token


def test_check_lists_the_tools_of_a_legacy_server(legacy: Stack, host: HostSetup) -> None:
    tools = checked_tools(host, legacy.url, "--transport", "sse-only")
    assert {"echo", "whoami", "save_note"} <= tools


def test_an_endpoint_outside_the_token_is_refused_not_sent_the_token(
    legacy: Stack, host: HostSetup
) -> None:
    stream_url = f"{legacy.url}/sse"  # its endpoint, /mcp/messages/, is not below /mcp/sse
    seen = len(server_requests(legacy))
    raw = RawHost(host, stream_url, "--transport", "sse-only")
    try:
        for request_id in (1, 2):  # an answer every time, and the proxy keeps going
            answer = raw.request(request_id, "initialize", {"protocolVersion": "2024-11-05"})
            message = answer["error"]["message"]
            assert answer["error"]["code"] == -32003
            assert "/mcp/messages/" in message and stream_url in message
            assert "access token" in message
    finally:
        assert raw.close() == 0
    requests = server_requests(legacy)[seen:]
    assert [r for r in requests if r["path"] == "/mcp/sse" and r["status"] == 200]
    assert not [r for r in requests if r["path"].startswith("/mcp/messages")]  # nothing sent


def test_the_server_restarted_under_a_live_proxy_gets_a_new_session(
    legacy: Stack, host: HostSetup
) -> None:
    """A new stream is a new session: the proxy replays the host's handshake on it, with the
    user's headers like every other POST, and the host's next call is answered."""
    raw = RawHost(host, legacy.url, "--transport", "sse-only", "--header", "X-Test:kept")
    try:
        raw.handshake()
        call = {"name": "echo", "arguments": {"text": "before"}}
        assert raw.request(1, "tools/call", call)["result"]["content"][0]["text"] == "before"
        legacy.restart_mcp_server()
        call = {"name": "echo", "arguments": {"text": "after"}}
        answer = raw.request(2, "tools/call", call)
        assert answer.get("result", {}).get("content", [{}])[0].get("text") == "after", answer
    finally:
        assert raw.close() == 0
    posts = [r for r in server_requests(legacy) if r["method"] == "POST"]
    assert len(posts) >= 3  # the replayed initialize, initialized, the call
    assert all(p.get("x-test") == "kept" and p["status"] == 202 for p in posts), posts
