"""Call a tool on an OAuth-protected MCP server with FastMCP (>= 4).

    pip install -e '.[httpx2]' 'fastmcp>=4'   # from a checkout of mcp-client-auth
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
        await list_or_call(client, tool, arguments)


async def list_or_call(client: Client, tool: str | None, arguments: dict[str, object]) -> None:
    """Without a tool, print the server's tools; with one, call it and print what it said."""
    if tool is None:
        for t in await client.list_tools():
            print(f"{t.name}: {t.description or ''}")
    else:
        result = await client.call_tool(tool, arguments)
        print("".join(getattr(c, "text", "") for c in result.content))


def command_line() -> tuple[str, str | None, dict[str, object]]:
    """``URL [TOOL [JSON_ARGUMENTS]]``, from the command line."""
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    return sys.argv[1], tool, arguments


if __name__ == "__main__":
    asyncio.run(main(*command_line()))
