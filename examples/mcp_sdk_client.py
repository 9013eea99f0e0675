"""Call a tool on an OAuth-protected MCP server with the official MCP SDK (mcp >= 2, httpx2).

    pip install -e '.[httpx2]' 'mcp>=2'   # from a checkout of mcp-client-auth
    python examples/mcp_sdk_client.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]

The first run opens your browser to log in; later runs, in any process, reuse the stored tokens
and refresh them silently. Without a TOOL it lists the server's tools.
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_client_auth import OAuthClientProvider


async def main(url: str, tool: str | None, arguments: dict[str, object]) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    await list_or_call(url, auth, tool, arguments)


async def list_or_call(
    url: str, auth: httpx2.Auth, tool: str | None, arguments: dict[str, object]
) -> None:
    """Connect with ``auth``. Without a tool, print the server's tools; with one, call it and
    print what it said."""
    async with (
        httpx2.AsyncClient(auth=auth) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        if tool is None:
            for t in (await client.list_tools()).tools:
                print(f"{t.name}: {t.description or ''}")
        else:
            result = await client.call_tool(tool, arguments)
            print("".join(getattr(c, "text", "") for c in result.content))


if __name__ == "__main__":
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    asyncio.run(main(sys.argv[1], tool, arguments))
