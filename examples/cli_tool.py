"""mcp-tools: a tiny command-line tool that lists and calls the tools of an MCP server.

It shows what a CLI tool needs to authenticate to an OAuth-protected MCP server with this
library: one ``OAuthClientProvider`` as ``auth=`` of a plain ``httpx.Client``. The first run
opens the browser once; later runs, in any process, reuse the stored tokens and refresh them
silently. It shares the default store with the ``mcp-client-auth`` command, so::

    mcp-client-auth login https://mcp.example.com/mcp      # log in once, any way you like
    python examples/cli_tool.py https://mcp.example.com/mcp             # lists the tools
    python examples/cli_tool.py https://mcp.example.com/mcp echo text=hi   # calls one
    mcp-client-auth logout https://mcp.example.com/mcp

``--no-login`` never starts a login (for scripts and cron: exit 1 with the command to run
instead), ``--paste`` logs in without a local browser. ``--demo`` needs no server anywhere: it
starts the demo authorization server and MCP server on 127.0.0.1 in this process (consent is
automatic, so a stand-in for the browser follows the redirect) and keeps the tokens in memory.

The MCP side is a few lines of JSON-RPC over streamable HTTP, by hand, so that everything on
the page is either the protocol or the authentication; a real tool would use the MCP SDK (the
same ``auth`` object goes into its HTTP client).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mcp_client_auth import LoginRequiredError, MCPAuthError, OAuthClientProvider, TokenStore
from mcp_client_auth.login import PasteLogin

PROTOCOL_VERSION = "2025-06-18"


class MCPSession:
    """Just enough MCP (initialize, then requests) over streamable HTTP with ``httpx``."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url
        self.headers = {"accept": "application/json, text/event-stream"}
        self.next_id = 1

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request_id = self.next_id
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        response = self.client.post(self.url, json=message, headers=self.headers)
        response.raise_for_status()
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        answer = _json_rpc_answer(response, request_id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    def notify(self, method: str) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        self.client.post(self.url, json=message, headers=self.headers).raise_for_status()

    def initialize(self) -> None:
        result = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-tools", "version": "1.0"},
            },
        )
        self.headers["mcp-protocol-version"] = result.get("protocolVersion", PROTOCOL_VERSION)
        self.notify("notifications/initialized")


def _json_rpc_answer(response: httpx.Response, request_id: int) -> dict[str, Any]:
    """The answer to ``request_id``: a JSON body, or one event of a server-sent event stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("id") == request_id:
                    return dict(message)
        raise RuntimeError("the server's event stream held no answer")
    return dict(response.json())


def _arguments(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value that parses as JSON (numbers, true, lists) is taken so."""
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"mcp-tools: arguments are name=value, not {pair!r}")
        try:
            arguments[name] = json.loads(value)
        except ValueError:
            arguments[name] = value
    return arguments


@contextmanager
def _demo_servers() -> Iterator[tuple[str, Any]]:
    """The demo servers, their MCP URL, and a browser stand-in for their automatic consent."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from demo_servers import start_demo_servers
    except ImportError as exc:
        raise SystemExit(
            f"mcp-tools --demo needs the demo extra ({exc.name} is missing): "
            "pip install -e '.[demo]'"
        ) from None
    demo = start_demo_servers()

    def follow_consent(authorization_url: str) -> str:
        """What the browser would do: the demo AS approves at once and redirects back."""
        if not authorization_url.startswith(demo.issuer + "/"):
            raise MCPAuthError(f"refusing to visit {authorization_url}: not the demo server")
        response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
        return response.headers["location"]

    try:
        yield demo.mcp_url, follow_consent
    finally:
        demo.stop()


def run(args: argparse.Namespace, url: str, login: Any, store: TokenStore | None) -> None:
    auth = OAuthClientProvider(
        url,
        client_name="mcp-tools",
        store=store,
        login=login,
        interactive=not args.no_login,
    )
    with httpx.Client(auth=auth, timeout=30) as client:
        session = MCPSession(client, url)
        session.initialize()
        if args.tool is None:
            for tool in session.request("tools/list")["tools"]:
                print(f"{tool['name']:<12} {tool.get('description') or ''}".rstrip())
            return
        result = session.request(
            "tools/call", {"name": args.tool, "arguments": _arguments(args.arguments)}
        )
        for item in result.get("content", []):
            print(item.get("text", json.dumps(item)))
        if result.get("isError"):
            raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="mcp-tools", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="the MCP server's URL (not with --demo)")
    parser.add_argument("tool", nargs="?", help="a tool to call (default: list the tools)")
    parser.add_argument("arguments", nargs="*", metavar="NAME=VALUE")
    parser.add_argument("--demo", action="store_true", help="start demo servers and use them")
    parser.add_argument("--paste", action="store_true", help="log in without a local browser")
    parser.add_argument("--no-login", action="store_true", help="never start a login")
    args = parser.parse_args()
    if args.demo:
        # With --demo every positional is shifted: there is no URL to give.
        args.arguments = [a for a in (args.tool, *args.arguments) if a is not None]
        args.tool = args.url
    elif args.url is None:
        parser.error("give the MCP server's URL, or --demo")
    try:
        if args.demo:
            with _demo_servers() as (url, follow_consent):
                # The demo servers die with this process, so their tokens are kept in memory.
                run(args, url, follow_consent, TokenStore.memory())
        else:
            run(args, args.url, PasteLogin() if args.paste else None, None)
    except LoginRequiredError:
        url = args.url or "URL"
        raise SystemExit(f"mcp-tools: not logged in; run `mcp-client-auth login {url}`") from None
    except MCPAuthError as exc:
        raise SystemExit(f"mcp-tools: {exc}") from None
    except httpx.HTTPError as exc:
        raise SystemExit(f"mcp-tools: {exc}") from None


if __name__ == "__main__":
    main()
