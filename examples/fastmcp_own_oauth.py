"""Keep FastMCP's own OAuth client, with its tokens in mcp-client-auth's encrypted store.

    pip install -e '.[httpx2]' 'fastmcp>=4'   # from a checkout of mcp-client-auth
    python examples/fastmcp_own_oauth.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]

FastMCP keeps tokens in memory unless given a store: this one keeps them in encrypted files,
the key in the system keyring, so the next run reuses them instead of logging in again.
"""

import asyncio
import json
import sys

from fastmcp import Client
from fastmcp.client.auth import OAuth

from mcp_client_auth import TokenStore


async def main(url: str, tool: str | None, arguments: dict[str, object]) -> None:
    # 127.0.0.1 rather than FastMCP's default "localhost" for its callback listener: the
    # loopback IP literal RFC 8252 recommends, which no name resolution can send elsewhere.
    auth = OAuth(url, token_storage=TokenStore.default().kv, callback_host="127.0.0.1")
    async with Client(url, auth=auth) as client:
        if tool is None:
            for t in await client.list_tools():
                print(f"{t.name}: {t.description or ''}")
        else:
            result = await client.call_tool(tool, arguments)
            print("".join(getattr(c, "text", "") for c in result.content))


if __name__ == "__main__":
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    asyncio.run(main(sys.argv[1], tool, arguments))
