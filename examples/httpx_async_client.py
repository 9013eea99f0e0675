"""Any OAuth-protected HTTP API with plain ``httpx.AsyncClient``: here an MCP server, by hand.

    pip install -e .      # from a checkout of mcp-client-auth (no release on PyPI yet)
    python examples/httpx_async_client.py https://mcp.example.com/mcp

The same ``auth=`` object as for ``httpx.Client`` (``httpx_client.py``): the provider serves
sync and async clients alike. The first run opens your browser to log in; later runs reuse the
stored tokens.
"""

import asyncio
import json
import sys
from typing import Any

import httpx

from mcp_client_auth import OAuthClientProvider

VERSION = "2025-06-18"


async def call(client: httpx.AsyncClient, url: str, method: str, **params: Any) -> httpx.Response:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return (await client.post(url, json=message)).raise_for_status()


def result(response: httpx.Response) -> Any:
    """The JSON-RPC result, from a JSON body or a server-sent event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
        return json.loads(data)["result"]
    return response.json()["result"]


async def main(url: str) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    accept = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(auth=auth, headers=accept, timeout=30) as client:
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
