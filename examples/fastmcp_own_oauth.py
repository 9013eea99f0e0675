"""Keep FastMCP's own OAuth client, with its tokens in mcp-client-auth's encrypted store.

    pip install -e '.[httpx2]' 'fastmcp>=4'   # from a checkout of mcp-client-auth
    python examples/fastmcp_own_oauth.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]

FastMCP keeps tokens in memory unless given a store: this one keeps them in encrypted files,
the key in the system keyring, so the next run reuses them instead of logging in again.
"""

import asyncio

from fastmcp import Client
from fastmcp.client.auth import OAuth
from fastmcp_client import command_line, list_or_call  # the same as the plain example

from mcp_client_auth import TokenStore


async def main(url: str, tool: str | None, arguments: dict[str, object]) -> None:
    # 127.0.0.1 rather than FastMCP's default "localhost" for its callback listener: the
    # loopback IP literal RFC 8252 recommends, which no name resolution can send elsewhere.
    auth = OAuth(url, token_storage=TokenStore.default().kv, callback_host="127.0.0.1")
    async with Client(url, auth=auth) as client:
        await list_or_call(client, tool, arguments)


if __name__ == "__main__":
    asyncio.run(main(*command_line()))
