"""Any OAuth-protected HTTP API with ``httpx2.AsyncClient`` (what mcp >= 2 and FastMCP >= 4 use).

    pip install -e '.[httpx2]'   # from a checkout of mcp-client-auth (no release on PyPI yet)
    python examples/httpx2_async_client.py https://mcp.example.com/mcp

The MCP server is spoken to by hand here; ``mcp_sdk_client.py`` hands the same kind of client
to the MCP SDK. The first run opens your browser to log in; later runs reuse the stored tokens.
"""

import asyncio
import json
import sys
from typing import Any

import httpx2

from mcp_client_auth import OAuthClientProvider

VERSION = "2025-06-18"


async def call(client: httpx2.AsyncClient, url: str, method: str, **params: Any) -> httpx2.Response:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return (await client.post(url, json=message)).raise_for_status()


def result(response: httpx2.Response) -> Any:
    """The JSON-RPC result, from a JSON body or a server-sent event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
        return json.loads(data)["result"]
    return response.json()["result"]


async def main(url: str) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    accept = {"accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(auth=auth, headers=accept, timeout=30) as client:
        hello = {"name": "mcp-client-auth example", "version": "1"}
        init = await call(client, url, "initialize", protocolVersion=VERSION, capabilities={},
                          clientInfo=hello)  # fmt: skip
        print("server:", result(init)["serverInfo"]["name"])
        client.headers["mcp-session-id"] = init.headers["mcp-session-id"]
        client.headers["mcp-protocol-version"] = VERSION
        await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = result(await call(client, url, "tools/list"))["tools"]
        print("tools:", ", ".join(t["name"] for t in tools))
        await client.delete(url)  # ends the session


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
