"""Call a tool on an OAuth-protected MCP server with the MCP SDK 1.x (on httpx).

    pip install 'mcp<2' -e .   # from a checkout of mcp-client-auth (no release on PyPI yet)
    python examples/mcp_v1_client.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]

The first run opens your browser to log in; later runs reuse the stored tokens.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from mcp_client_auth import OAuthClientProvider


async def main(url: str, tool: str | None, arguments: dict[str, object]) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    async with (
        streamablehttp_client(url, auth=auth) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        if tool is None:
            for t in (await session.list_tools()).tools:
                print(f"{t.name}: {t.description or ''}")
        else:
            result = await session.call_tool(tool, arguments)
            print("".join(getattr(c, "text", "") for c in result.content))


if __name__ == "__main__":
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    asyncio.run(main(sys.argv[1], tool, arguments))
