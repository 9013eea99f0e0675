"""Real clients against the integration MCP server, step by step, in one process.

``python -m tests.integration.mcp_client_driver CLIENT URL --stores DIR --plan JSON`` runs the
plan's steps in order and prints one JSON line: each ``call`` step's report, the timeline, and
the error that stopped the plan, if one did. Steps:

- ``{"call": NAME, "store": S, "login": "auto"|"none", "tools": ["echo=TEXT", ...]}``: a NEW
  :class:`OAuthClientProvider` (nothing in memory) over ``TokenStore.default(DIR/S)``
  (``MCP_CLIENT_AUTH_KEY`` in the environment keeps the keyring out of it), CLIENT connects and
  calls each tool. Its report: the tool results, how many logins ran, every HTTP request sent
  (method, URL, status, time: recorded at the httpx and httpx2 transports, so whatever client
  library is in use, the provider's own requests included), the tokens' scope and expiry, and
  the error that ended the call (with every :class:`MCPAuthError` in it, exception groups and
  causes unwrapped). ``"must_work": true`` ends the plan when the call fails.
- ``{"wait_for_go": true}``: import the client's libraries, then wait for a line on standard
  input: the test starts this process early and lets it go the moment the previous one ends.
- ``{"revoke": S}``: revoke S's stored refresh token at the authorization server (RFC 7009).
- ``{"wait_for_expiry": [S, ...], "longest": SECONDS}``: sleep until the stored access tokens
  count as expired for the provider (its leeway).

CLIENT: ``mcp2`` (mcp 2.x ``Client`` over ``streamable_http_client`` on ``httpx2.AsyncClient``;
``mcp2-legacy``: the same with ``mode="legacy"``, the initialize handshake and a session),
``fastmcp`` (``fastmcp.Client(url, auth=...)``), ``mcp1`` (mcp 1.x ``streamablehttp_client``;
run it with the mcp 1.x environment's python), or ``httpx-sync``, ``httpx-async``,
``httpx2-sync``, ``httpx2-async`` (MCP JSON-RPC by hand over the plain client).

``login: auto``: the login is a callable that follows the authorization server's redirects (its
``INTERACTION_MODE=auto``) to the loopback redirect URI; ``none``: ``interactive=False``, so a
needed login raises :class:`LoginRequiredError`. Imports only what the chosen client needs: the
mcp 1.x environment has neither mcp 2.x nor httpx2 nor pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from mcp_client_auth import MCPAuthError, OAuthClientProvider, TokenStore
from mcp_client_auth.metadata import canonical_resource_url

CLIENTS = ("mcp2", "fastmcp", "mcp1", "httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async")
# more clients a test may name: mcp 2.x in legacy mode (the initialize handshake, a session)
MORE_CLIENTS = ("mcp2-legacy",)
PROTOCOL_VERSION = "2025-06-18"  # for the hand-made JSON-RPC: a handshake-era version
ACCEPT = {"accept": "application/json, text/event-stream"}

requests: list[dict[str, Any]] = []
logins: list[str] = []


# -- what the process sent ------------------------------------------------------------------


def _record(method: str, url: Any, status: int | None) -> None:
    requests.append({"method": method, "url": str(url), "status": status, "t": time.time()})


def instrument(module: Any) -> None:
    """Record every request sent through ``module``'s (httpx or httpx2) HTTP transports."""
    sync_send = module.HTTPTransport.handle_request
    async_send = module.AsyncHTTPTransport.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        try:
            response = sync_send(self, request)
        except Exception:
            _record(request.method, request.url, None)
            raise
        _record(request.method, request.url, response.status_code)
        return response

    async def handle_async_request(self: Any, request: Any) -> Any:
        try:
            response = await async_send(self, request)
        except Exception:
            _record(request.method, request.url, None)
            raise
        _record(request.method, request.url, response.status_code)
        return response

    module.HTTPTransport.handle_request = handle_request
    module.AsyncHTTPTransport.handle_async_request = handle_async_request


# -- the login: a browser in the authorization server's INTERACTION_MODE=auto ----------------


def follow_redirects(authorization_url: str, *, max_hops: int = 20) -> str:
    """Follow the authorization server's redirects; return the first URL that leaves it."""
    logins.append(authorization_url)
    origin = urlsplit(authorization_url)[:2]
    url = authorization_url
    with httpx.Client(follow_redirects=False, timeout=10) as browser:  # keeps its cookies
        for _ in range(max_hops):
            response = browser.get(url)
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                raise RuntimeError(f"no redirect at {url}: HTTP {response.status_code}")
            url = urljoin(url, str(location))
            if urlsplit(url)[:2] != origin:
                return url
    raise RuntimeError(f"more than {max_hops} redirects from {authorization_url}")


# -- the clients -----------------------------------------------------------------------------

Tools = list[tuple[str, dict[str, Any]]]


def _text(content: Any) -> str:
    return "".join(str(getattr(c, "text", "")) for c in content)


async def run_mcp2(
    url: str, auth: OAuthClientProvider, tools: Tools, mode: str = "auto"
) -> list[Any]:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    results = []
    async with (
        httpx2.AsyncClient(auth=auth) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        for name, args in tools:
            result = await client.call_tool(name, args)
            results.append({"text": _text(result.content), "is_error": result.is_error})
    return results


async def run_fastmcp(url: str, auth: OAuthClientProvider, tools: Tools) -> list[Any]:
    from fastmcp import Client

    results = []
    async with Client(url, auth=auth) as client:
        for name, args in tools:
            result = await client.call_tool(name, args, raise_on_error=False)
            results.append({"text": _text(result.content), "is_error": result.is_error})
    return results


async def run_mcp1(url: str, auth: OAuthClientProvider, tools: Tools) -> list[Any]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client  # type: ignore[attr-defined]

    results = []
    async with (
        streamablehttp_client(url, auth=auth) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for name, args in tools:
            result = await session.call_tool(name, args)
            is_error = result.isError  # type: ignore[attr-defined]  # mcp 1.x
            results.append({"text": _text(result.content), "is_error": is_error})
    return results


def _message(response: Any) -> dict[str, Any]:
    """The JSON-RPC response in a JSON or SSE body."""
    response.raise_for_status()
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if "id" in message:
                    return dict(message)
        raise RuntimeError(f"no JSON-RPC response in the event stream: {response.text[:300]}")
    return dict(response.json())


def _rpc(method: str, params: dict[str, Any], ident: int | None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        message["id"] = ident
    return message


_INIT = {
    "protocolVersion": PROTOCOL_VERSION,
    "capabilities": {},
    "clientInfo": {"name": "mcp-client-auth driver", "version": "0"},
}


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    if "error" in message:
        raise RuntimeError(f"JSON-RPC error: {message['error']}")
    result = message["result"]
    text = "".join(c.get("text", "") for c in result.get("content", []))
    return {"text": text, "is_error": bool(result.get("isError"))}


def run_plain_sync(module: Any, url: str, auth: OAuthClientProvider, tools: Tools) -> list[Any]:
    results = []
    with module.Client(auth=auth, headers=ACCEPT, timeout=30) as client:
        init = client.post(url, json=_rpc("initialize", _INIT, 1))
        _message(init)
        headers = {
            "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": PROTOCOL_VERSION,
        }
        client.post(url, json=_rpc("notifications/initialized", {}, None), headers=headers)
        for i, (name, args) in enumerate(tools, start=2):
            call = _rpc("tools/call", {"name": name, "arguments": args}, i)
            results.append(_tool_result(_message(client.post(url, json=call, headers=headers))))
        client.delete(url, headers=headers)
    return results


async def run_plain_async(
    module: Any, url: str, auth: OAuthClientProvider, tools: Tools
) -> list[Any]:
    results = []
    async with module.AsyncClient(auth=auth, headers=ACCEPT, timeout=30) as client:
        init = await client.post(url, json=_rpc("initialize", _INIT, 1))
        _message(init)
        headers = {
            "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": PROTOCOL_VERSION,
        }
        await client.post(url, json=_rpc("notifications/initialized", {}, None), headers=headers)
        for i, (name, args) in enumerate(tools, start=2):
            call = _rpc("tools/call", {"name": name, "arguments": args}, i)
            response = await client.post(url, json=call, headers=headers)
            results.append(_tool_result(_message(response)))
        await client.delete(url, headers=headers)
    return results


def run(client: str, url: str, auth: OAuthClientProvider, tools: Tools) -> list[Any]:
    if client in ("httpx-sync", "httpx2-sync"):
        module = __import__(client.split("-")[0])
        return run_plain_sync(module, url, auth, tools)
    runners: dict[str, Callable[[], Any]] = {
        "mcp2": lambda: run_mcp2(url, auth, tools),
        "mcp2-legacy": lambda: run_mcp2(url, auth, tools, mode="legacy"),
        "fastmcp": lambda: run_fastmcp(url, auth, tools),
        "mcp1": lambda: run_mcp1(url, auth, tools),
        "httpx-async": lambda: run_plain_async(httpx, url, auth, tools),
        "httpx2-async": lambda: run_plain_async(__import__("httpx2"), url, auth, tools),
    }
    result: list[Any] = asyncio.run(runners[client]())
    return result


# -- errors, as a person would meet them -----------------------------------------------------


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exception, its exception-group members and causes, depth first."""
    found: list[BaseException] = []
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        stack.extend(getattr(current, "exceptions", ()))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return found


def describe(exc: BaseException) -> dict[str, Any]:
    auth_errors = [e for e in _leaves(exc) if isinstance(e, MCPAuthError)]
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:2000],
        "auth_errors": [{"type": type(e).__name__, "message": str(e)} for e in auth_errors],
        "traceback": "".join(traceback.format_exception(exc))[-6000:],
    }


# -- the plan ---------------------------------------------------------------------------------


def _record_of(store: Path, url: str) -> Any:
    record = asyncio.run(TokenStore.default(store).get(canonical_resource_url(url)))
    if record is None or record.tokens is None or record.client is None:
        raise RuntimeError(f"no tokens stored in {store}")
    return record


def call(args: argparse.Namespace, step: dict[str, Any]) -> dict[str, Any]:
    """A new provider over the step's store (nothing in memory), the client, the tools."""
    tools: Tools = []
    for spec in step.get("tools", []):
        name, sep, text = spec.partition("=")
        tools.append((name, {"text": text} if sep else {}))
    auth = OAuthClientProvider(
        args.url,
        client_name=f"integration test ({args.client})",
        client_id=args.client_id,
        store=TokenStore.default(args.stores / step["store"]),
        login=follow_redirects if step["login"] == "auto" else None,
        interactive=step["login"] == "auto",
        leeway=args.leeway,
        dpop=False if args.dpop == "off" else None,
    )
    requests.clear()
    logins.clear()
    report: dict[str, Any] = {"started": time.time()}
    try:
        report["results"] = run(args.client, args.url, auth, tools)
    except BaseException as exc:  # a report either way: the test decides
        report["error"] = describe(exc)
    tokens = auth.tokens
    report.update(
        logins=len(logins),
        requests=list(requests),
        scope=tokens.scope if tokens else None,
        expires_at=tokens.expires_at if tokens else None,
        finished=time.time(),
    )
    return report


def revoke(args: argparse.Namespace, store: str) -> None:
    """Revoke the stored refresh token at the authorization server (RFC 7009)."""
    record = _record_of(args.stores / store, args.url)
    response = httpx.post(
        record.server_metadata["revocation_endpoint"],
        data={
            "token": record.tokens.refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": record.client.client_id,
        },
        timeout=10,
    )
    response.raise_for_status()


def wait_for_expiry(args: argparse.Namespace, stores: list[str], longest: float) -> None:
    """Sleep until the stored access tokens count as expired (the provider's leeway)."""
    expiries = [_record_of(args.stores / s, args.url).tokens.expires_at for s in stores]
    deadline = max(expiries) - args.leeway + 0.5
    if deadline - time.time() > longest:
        raise RuntimeError(f"tokens valid for more than {longest} s: {expiries}")
    time.sleep(max(0.0, deadline - time.time()))


PRELOAD = {
    "mcp2": ("httpx2", "mcp.client.client", "mcp.client.streamable_http"),
    "mcp2-legacy": ("httpx2", "mcp.client.client", "mcp.client.streamable_http"),
    "fastmcp": ("fastmcp",),
    "mcp1": ("mcp", "mcp.client.streamable_http"),
    "httpx2-sync": ("httpx2",),
    "httpx2-async": ("httpx2",),
}


def wait_for_go(client: str) -> None:
    for module in PRELOAD.get(client, ()):
        __import__(module)
    sys.stdin.readline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=CLIENTS + MORE_CLIENTS)
    parser.add_argument("url")
    parser.add_argument("--stores", type=Path, required=True, help="a folder of token stores")
    parser.add_argument("--plan", required=True, help="the steps, as JSON: see the tests")
    parser.add_argument("--leeway", type=float, default=2.0)
    parser.add_argument("--client-id", help="a pre-registered client (public, PKCE)")
    parser.add_argument(
        "--dpop", choices=("default", "off"), default="default", help="off: dpop=False"
    )
    args = parser.parse_args(argv)

    instrument(httpx)
    if args.client != "mcp1":
        instrument(__import__("httpx2"))
    output: dict[str, Any] = {"client": args.client, "steps": {}, "timeline": []}
    try:
        for step in json.loads(args.plan):
            output["timeline"].append([next(iter(step)), time.time()])
            if "call" in step:
                output["steps"][step["call"]] = call(args, step)
            elif "wait_for_go" in step:
                wait_for_go(args.client)
            elif "revoke" in step:
                revoke(args, step["revoke"])
            elif "wait_for_expiry" in step:
                wait_for_expiry(args, step["wait_for_expiry"], step.get("longest", 60.0))
            else:
                raise ValueError(f"unknown step {step}")
            if (
                "call" in step
                and step.get("must_work")
                and "error" in output["steps"][step["call"]]
            ):
                break
    except Exception as exc:
        output["error"] = describe(exc)
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
