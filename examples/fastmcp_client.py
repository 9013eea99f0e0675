"""Call a tool on an OAuth-protected MCP server with FastMCP (>= 4).

    python examples/fastmcp_client.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]

The first run opens your browser to log in; later runs reuse the stored tokens.
"""

import asyncio
import json
import sys

from fastmcp import Client

from mcp_client_auth import OAuthClientProvider


async def main(url: str, tool: str | None, arguments: dict[str, object]) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    async with Client(url, auth=auth) as client:
        if tool is None:
            for t in await client.list_tools():
                print(f"{t.name}: {t.description or ''}")
        else:
            result = await client.call_tool(tool, arguments)
            print("".join(getattr(c, "text", "") for c in result.content))


if __name__ == "__main__":
    url, tool, args = sys.argv[1], (sys.argv[2:3] or [None])[0], sys.argv[3:4] or ["{}"]
    asyncio.run(main(url, tool, json.loads(args[0])))
