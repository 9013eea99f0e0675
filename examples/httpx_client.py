"""Any OAuth-protected HTTP API with plain ``httpx.Client``: here an MCP server, spoken to by hand.

    pip install -e .      # from a checkout of mcp-client-auth (no release on PyPI yet)
    python examples/httpx_client.py https://mcp.example.com/mcp

The same ``auth=`` object works on ``httpx.AsyncClient`` (``httpx_async_client.py``),
``httpx2.Client`` (``httpx2_client.py``) and ``httpx2.AsyncClient`` (``httpx2_async_client.py``).
The first run opens your browser to log in; later runs reuse the stored tokens. The token goes
only to the server URL given to the provider and the paths below it.
"""

import json
import sys
from typing import Any

import httpx

from mcp_client_auth import OAuthClientProvider

VERSION = "2025-06-18"


def call(client: httpx.Client, url: str, method: str, **params: Any) -> httpx.Response:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return client.post(url, json=message).raise_for_status()


def result(response: httpx.Response) -> Any:
    """The JSON-RPC result, from a JSON body or a server-sent event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
        return json.loads(data)["result"]
    return response.json()["result"]


def main(url: str) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    accept = {"accept": "application/json, text/event-stream"}
    with httpx.Client(auth=auth, headers=accept, timeout=30) as client:
        hello = {"name": "mcp-client-auth example", "version": "1"}
        init = call(client, url, "initialize", protocolVersion=VERSION, capabilities={},
                    clientInfo=hello)  # fmt: skip
        print("server:", result(init)["serverInfo"]["name"])
        client.headers["mcp-session-id"] = init.headers["mcp-session-id"]
        client.headers["mcp-protocol-version"] = VERSION
        client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = result(call(client, url, "tools/list"))["tools"]
        print("tools:", ", ".join(t["name"] for t in tools))
        client.delete(url)  # ends the session


if __name__ == "__main__":
    main(sys.argv[1])
