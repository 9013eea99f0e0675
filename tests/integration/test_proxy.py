"""``mcp-client-auth proxy`` between real hosts' clients and the real servers.

The hosts: the ``mcp`` SDK's stdio client and FastMCP's, each spawning the proxy as a desktop
host does, and a raw host writing lines itself (for what a well-behaved client never sends).
The server: the ``mcp`` SDK's MCP server (``mcp_server.py``) behind the real authorization
server (oidc-provider), stateful with SSE answers and stateless with JSON answers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from mcp_client_auth import TokenStore

from .conftest import StartStack
from .harness import Stack, start_stack, wait_until
from .proxy_host import (
    HostSetup,
    RawHost,
    checked_tools,
    fake_browser,
    fastmcp_host_session,
    proxy_command,
    v1_host_session,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sessions, SSE answers, the GET stream."""
    stack = start_stack(
        tmp_path_factory.mktemp("stateful"), server_args=("--announce",), AT_TTL="600"
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def stateless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No sessions, JSON answers."""
    stack = start_stack(
        tmp_path_factory.mktemp("stateless"),
        server_args=("--stateless", "--json-response"),
        AT_TTL="600",
    )
    yield stack
    stack.stop()


@pytest.fixture
def host(tmp_path: Path, store_key: str) -> HostSetup:
    return HostSetup(
        tmp_path / "store",
        store_key,
        fake_browser(tmp_path),
        extra_env={"PROXY_TEST_VALUE": "from the environment"},
    )


def sdk_params(setup: HostSetup, url: str, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=proxy_command(), args=setup.args(url, *extra), env=setup.env()
    )


def authorizations(stack: Stack) -> int:
    """Logins the authorization server completed (authorization-code grants)."""
    return sum(
        1
        for e in stack.events()
        if e["event"] == "grant.success" and e.get("grant_type") == "authorization_code"
    )


def refreshes(stack: Stack) -> int:
    return sum(
        1
        for e in stack.events()
        if e["event"] == "grant.success" and e.get("grant_type") == "refresh_token"
    )


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def sdk_session(
    setup: HostSetup, url: str, *calls: tuple[str, dict[str, Any]], mode: str = "auto"
) -> list[str]:
    """One host session through the proxy: list the tools, then make ``calls``. ``mode``:
    ``auto`` (the stateless revision where the server has it), ``legacy`` (the handshake and
    a session, where the server keeps them)."""
    async with Client(sdk_params(setup, url), mode=mode) as client:
        tools = await client.list_tools()
        assert "echo" in {t.name for t in tools.tools}
        answers = []
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, text_of(result)
            answers.append(text_of(result))
        return answers


@pytest.mark.parametrize(
    ("server", "mode"),
    [("stateful", "legacy"), ("stateful", "auto"), ("stateless", "legacy"), ("stateless", "auto")],
)
def test_sdk_host_logs_in_once_then_reconnects_with_the_store(
    server: str, mode: str, request: pytest.FixtureRequest, host: HostSetup
) -> None:
    stack: Stack = request.getfixturevalue(server)
    before = authorizations(stack)
    text = "héllo\nworld"
    first = asyncio.run(sdk_session(host, stack.url, ("echo", {"text": text}), mode=mode))
    assert first == [text]
    assert authorizations(stack) == before + 1  # the browser login

    again = asyncio.run(sdk_session(host, stack.url, ("echo", {"text": "again"}), mode=mode))
    assert again == ["again"]
    assert authorizations(stack) == before + 1  # the stored token: no login
    if server == "stateful" and mode == "legacy":  # a session: its id on every later POST
        assert mcp_posts(stack)[-1]["session"]
        assert mcp_posts(stack)[-1]["mcp-protocol-version"] == "2025-11-25"


def server_requests(stack: Stack) -> list[dict[str, Any]]:
    """What the MCP server saw: one entry per HTTP request (see ``RequestLog``)."""
    return [e for e in stack.mcp_server.events() if "method" in e and "status" in e]


def mcp_posts(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in server_requests(stack) if r["method"] == "POST" and r["path"] == "/mcp"]


def test_stateless_server_gets_the_revisions_headers(stateless: Stack, host: HostSetup) -> None:
    asyncio.run(sdk_session(host, stateless.url, ("echo", {"text": "x"})))
    calls = [p for p in mcp_posts(stateless) if p.get("mcp-method") == "tools/call"]
    assert calls, server_requests(stateless)
    assert all(not p["session"] for p in mcp_posts(stateless))
    assert calls[-1]["mcp-protocol-version"] == "2026-07-28"
    assert calls[-1]["mcp-name"] == "echo"


def test_a_notification_through_the_servers_own_stream(stateful: Stack, host: HostSetup) -> None:
    async def session() -> list[str]:
        seen: list[str] = []
        arrived = asyncio.Event()

        async def on_message(message: Any) -> None:
            method = getattr(getattr(message, "root", message), "method", None)
            if isinstance(method, str):
                seen.append(method)
                if method == "notifications/tools/list_changed":
                    arrived.set()

        params = sdk_params(host, stateful.url)
        async with Client(params, message_handler=on_message, mode="legacy") as client:
            await client.list_tools()
            await wait_for_get_stream(stateful)
            result = await client.call_tool("announce", {})
            assert text_of(result) == "announced"
            await asyncio.wait_for(arrived.wait(), 60)
        return seen

    assert "notifications/tools/list_changed" in asyncio.run(session())
    gets = [r for r in server_requests(stateful) if r["method"] == "GET" and r["path"] == "/mcp"]
    assert gets and gets[-1]["session"] and gets[-1]["status"] == 200


async def wait_for_get_stream(stack: Stack, count: int = 1) -> None:
    """Until the server has answered ``count`` GET streams (it logs each as it starts)."""
    for _ in range(1200):
        gets = [r for r in server_requests(stack) if r["method"] == "GET" and r["path"] == "/mcp"]
        if len([g for g in gets if g["status"] == 200]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the proxy never opened the GET stream: {server_requests(stack)}")


def test_step_up_inside_the_session(stateful: Stack, host: HostSetup) -> None:
    asyncio.run(sdk_session(host, stateful.url))  # logged in with the base scope
    before = authorizations(stateful)
    calls = (("echo", {"text": "a"}), ("save_note", {"text": "n"}))
    answers = asyncio.run(sdk_session(host, stateful.url, *calls, mode="legacy"))
    assert answers == ["a", "saved: n"]
    assert authorizations(stateful) == before + 1  # the step-up login, in the same session
    forbidden = [p for p in mcp_posts(stateful) if p["status"] == 403]
    assert forbidden and forbidden[-1]["session"]


def test_expiry_is_a_silent_refresh(mcp_stack: StartStack, host: HostSetup) -> None:
    stack = mcp_stack(AT_TTL="5")

    async def session() -> list[str]:
        async with Client(sdk_params(host, stack.url)) as client:
            first = text_of(await client.call_tool("echo", {"text": "1"}))
            wait_until(time.time() + 6)  # past the access token's lifetime
            second = text_of(await client.call_tool("echo", {"text": "2"}))
            return [first, second]

    assert asyncio.run(session()) == ["1", "2"]
    assert authorizations(stack) == 1
    assert refreshes(stack) >= 1


def test_server_restarted_under_a_live_proxy(mcp_stack: StartStack, host: HostSetup) -> None:
    stack = mcp_stack(AT_TTL="600")

    async def session() -> list[str]:
        async with Client(sdk_params(host, stack.url), mode="legacy") as client:
            first = text_of(await client.call_tool("echo", {"text": "before"}))
            await asyncio.to_thread(stack.restart_mcp_server)
            second = text_of(await client.call_tool("echo", {"text": "after"}))
            return [first, second]

    assert asyncio.run(session()) == ["before", "after"]
    expired = [r for r in server_requests(stack) if r["status"] == 404 and r["session"]]
    assert expired, server_requests(stack)  # the old session was refused, and a new one made
    assert authorizations(stack) == 1


def test_two_proxies_at_once_share_one_login(mcp_stack: StartStack, tmp_path: Path) -> None:
    stack = mcp_stack(AT_TTL="600")
    gate = tmp_path / "gate"
    setup = HostSetup(
        tmp_path / "store",
        Fernet.generate_key().decode(),
        fake_browser(tmp_path),
        extra_env={"FAKE_BROWSER_GATE": str(gate)},
    )

    async def both() -> list[list[str]]:
        sessions = [
            asyncio.ensure_future(sdk_session(setup, stack.url, ("echo", {"text": str(n)})))
            for n in range(2)
        ]
        # The login is held until both proxies are inside it: one holds the store's lock for
        # the server (and waits for the browser), the other waits for that lock, re-trying it,
        # so it need not have the file open at every look: the most seen at once counts.
        seen = 0
        for _ in range(2400):
            seen = max(seen, len(processes_with_lock_open(setup.store)))
            if seen >= 2 or any(s.done() for s in sessions):
                break
            await asyncio.sleep(0.05)
        gate.touch()
        return [*await asyncio.gather(*sessions), [str(seen >= 2)]]

    assert asyncio.run(both()) == [["0"], ["1"], ["True"]]
    assert authorizations(stack) == 1
    assert refreshes(stack) == 0


def processes_with_lock_open(store: Path) -> set[int]:
    """The processes with one of the store's lock files open (held or waited for)."""
    found: set[int] = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            targets = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        if any(t.startswith(str(store)) and t.endswith(".lock") for t in targets):
            found.add(int(fd_dir.parent.name))
    return found


def test_fastmcp_host_through_the_proxy(stateful: Stack, host: HostSetup) -> None:
    tools, echoed = asyncio.run(fastmcp_host_session(host, stateful.url, "fast"))
    assert "echo" in tools
    assert echoed == "fast"


def test_check_lists_the_tools(stateful: Stack, host: HostSetup) -> None:
    assert {"echo", "whoami", "save_note"} <= checked_tools(host, stateful.url)


def test_malformed_lines_get_errors_and_the_proxy_goes_on(
    stateful: Stack, host: HostSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    debug_log = host.store.parent / "proxy-debug.log"
    extra = ("--header", "X-Test:${PROXY_TEST_VALUE}", "--debug", str(debug_log))
    raw = RawHost(host, stateful.url, *extra)
    try:
        raw.send_line(b"this is not json")
        assert raw.receive()["error"]["code"] == -32700
        raw.send_line(b'{"jsonrpc": "2.0", "id": 1, "method": ')
        assert raw.receive()["error"]["code"] == -32700
        raw.send_line(b"[]")
        assert raw.receive()["error"]["code"] == -32600
        raw.send_line(b"42")
        assert raw.receive()["error"]["code"] == -32600
        assert raw.handshake()["result"]["serverInfo"]
        answer = raw.request(2, "tools/call", {"name": "echo", "arguments": {"text": "ok"}})
        assert answer["result"]["content"][0]["text"] == "ok"
    finally:
        assert raw.close() == 0
    assert any(p.get("x-test") == "from the environment" for p in mcp_posts(stateful))
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", host.key)
    log = debug_log.read_text()
    assert "not JSON-RPC" in log and "HTTP Request: POST" in log  # the detail is in the file
    record = asyncio.run(TokenStore.default(str(host.store)).get(stateful.url))
    assert record is not None and record.tokens is not None
    assert record.tokens.access_token not in log + raw.log()
    assert record.tokens.refresh_token not in log + raw.log()


def test_remote_down_is_an_error_per_request(host: HostSetup) -> None:
    with socket.socket() as closed:  # bound, never listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/mcp"
        raw = RawHost(host, url)
        try:
            for request_id in (1, 2):
                answer = raw.request(request_id, "initialize", {"protocolVersion": "2025-06-18"})
                assert answer["error"]["code"] == -32000
                assert url in answer["error"]["message"]
            raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})  # no answer
            assert raw.request(3, "tools/list")["error"]["code"] == -32000
        finally:
            assert raw.close() == 0


def test_a_login_that_cannot_happen_names_the_login_command(
    stateless: Stack, tmp_path: Path, store_key: str
) -> None:
    nobrowser = HostSetup(tmp_path / "store", store_key, None)
    raw = RawHost(nobrowser, stateless.url)
    try:
        for request_id in (1, 2):
            answer = raw.request(request_id, "tools/list")
            assert answer["error"]["code"] == -32001
            text = answer["error"]["message"]
            assert f"mcp-client-auth login {stateless.url} --store {tmp_path / 'store'}" in text
        assert "Open this URL in your browser" in raw.log()  # for the host's log
    finally:
        assert raw.close() == 0


def test_mcp_v1_host_through_the_proxy(stateful: Stack, host: HostSetup, mcp_v1: str) -> None:
    """The mcp 1.x stdio client (its own environment) as the host; the proxy is this one's."""
    seen = v1_host_session(mcp_v1, host, stateful.url)
    assert seen["text"] == "from mcp 1.x"
    assert "echo" in seen["tools"]
    assert mcp_posts(stateful)[-1]["session"]  # the 1.x client keeps a session


def test_a_revoked_login_is_replaced_inside_the_session(
    mcp_stack: StartStack, host: HostSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh token is revoked while the host is connected: when the access token
    expires, the refresh fails and the proxy signs in again through the browser; the host sees
    its answer, late."""
    stack = mcp_stack(AT_TTL="5")
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", host.key)

    async def session() -> list[str]:
        async with Client(sdk_params(host, stack.url), mode="legacy") as client:
            first = text_of(await client.call_tool("echo", {"text": "1"}))
            record = await TokenStore.default(str(host.store)).get(stack.url)
            assert record is not None and record.tokens is not None and record.client
            assert record.tokens.refresh_token
            stack.revoke(record.tokens.refresh_token, record.client.client_id)
            wait_until(time.time() + 6)  # past the access token's lifetime
            second = text_of(await client.call_tool("echo", {"text": "2"}))
            return [first, second]

    assert asyncio.run(session()) == ["1", "2"]
    assert authorizations(stack) == 2  # the first login, and the one after the revocation
