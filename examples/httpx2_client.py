"""Any OAuth-protected HTTP API with ``httpx2.Client``, the successor of httpx: an MCP server here.

    pip install -e '.[httpx2]'   # from a checkout of mcp-client-auth (no release on PyPI yet)
    python examples/httpx2_client.py https://mcp.example.com/mcp

The provider is an ``httpx2.Auth`` as well as an ``httpx.Auth`` (``httpx_client.py``): one
object for both libraries. The first run opens your browser to log in; later runs reuse the
stored tokens.
"""

import json
import sys
from typing import Any

import httpx2

from mcp_client_auth import OAuthClientProvider

VERSION = "2025-06-18"


def call(client: httpx2.Client, url: str, method: str, **params: Any) -> httpx2.Response:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return client.post(url, json=message).raise_for_status()


def result(response: httpx2.Response) -> Any:
    """The JSON-RPC result, from a JSON body or a server-sent event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
        return json.loads(data)["result"]
    return response.json()["result"]


def main(url: str) -> None:
    auth = OAuthClientProvider(url, client_name="mcp-client-auth example")
    accept = {"accept": "application/json, text/event-stream"}
    with httpx2.Client(auth=auth, headers=accept, timeout=30) as client:
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
