"""``mcp-client-auth proxy`` between real hosts' clients and the real servers.

The hosts: the ``mcp`` SDK's stdio client and FastMCP's, each spawning the proxy as a desktop
host does, and a raw host writing lines itself (for what a well-behaved client never sends).
The server: the ``mcp`` SDK's MCP server (``mcp_server.py``) behind the real authorization
server (oidc-provider), stateful with SSE answers and stateless with JSON answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from .harness import Stack, start_stack
from .proxy_host import HostSetup, fake_browser, proxy_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sessions, SSE answers, the GET stream."""
    stack = start_stack(tmp_path_factory.mktemp("stateful"), AT_TTL="600")
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
    return HostSetup(tmp_path / "store", store_key, fake_browser(tmp_path))


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


async def sdk_session(setup: HostSetup, url: str, *calls: tuple[str, dict[str, Any]]) -> list[str]:
    """One host session through the proxy: list the tools, then make ``calls``."""
    async with Client(sdk_params(setup, url)) as client:
        tools = await client.list_tools()
        assert "echo" in {t.name for t in tools.tools}
        answers = []
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, text_of(result)
            answers.append(text_of(result))
        return answers


@pytest.mark.parametrize("server", ["stateful", "stateless"])
def test_sdk_host_logs_in_once_then_reconnects_with_the_store(
    server: str, request: pytest.FixtureRequest, host: HostSetup
) -> None:
    stack: Stack = request.getfixturevalue(server)
    before = authorizations(stack)
    first = asyncio.run(sdk_session(host, stack.url, ("echo", {"text": "héllo\nworld"})))
    assert first == ["héllo\nworld"]
    assert authorizations(stack) == before + 1  # the browser login

    again = asyncio.run(sdk_session(host, stack.url, ("echo", {"text": "again"})))
    assert again == ["again"]
    assert authorizations(stack) == before + 1  # the stored token: no login
