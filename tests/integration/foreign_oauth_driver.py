"""Other projects' OAuth clients over our store, step by step, in one process.

``python -m tests.integration.foreign_oauth_driver CLIENT --store DIR --plan JSON`` runs the
plan in one event loop and prints one JSON line: each ``call`` step's report and the error
that stopped the plan, if one did. CLIENT:

- ``fastmcp``: FastMCP's own ``OAuth(url, token_storage=TokenStore.default(DIR).kv)`` in
  ``fastmcp.Client``; its login is FastMCP's (``webbrowser.open``, then its callback server),
  so ``$BROWSER`` must be a program that completes it (``fake_browser.py``), and
  ``$FAKE_BROWSER_LOG`` counts the logins.
- ``sdk2``: the mcp 2.x SDK's ``OAuthClientProvider(storage=SDKTokenStorage(url, store))`` on
  ``httpx2``; ``sdk1``: the mcp 1.x SDK's, on ``httpx`` (run with the mcp 1.x python). Their
  login is the two handlers the SDK asks for: follow the authorization server's redirects
  (``INTERACTION_MODE=auto``) and hand back the code and state of the redirect URI reached.

One provider per server URL for the whole process, as an application keeps it, so what it
holds in memory (the token's expiry, the authorization server's metadata) counts as it does
for a user. Steps: ``{"call": NAME, "url": URL, "tools": ["echo=TEXT"]}`` (the tool results,
the logins, every HTTP request sent, the error); ``{"wait_for_go": true}`` (a line on standard
input); ``{"wait_for_expiry": URL}`` (sleep until the access token stored for URL, as the
client's own storage reads it, has expired).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from mcp_client_auth import SDKTokenStorage, TokenStore

from .mcp_client_driver import describe, follow_redirects, instrument, requests

CLIENTS = ("fastmcp", "sdk2", "sdk1")


def browser_logins() -> int:
    """How many times FastMCP opened the (fake) browser."""
    log = Path(os.environ["FAKE_BROWSER_LOG"])
    return len(log.read_text().splitlines()) if log.exists() else 0


class SDKLogin:
    """The SDK's two login handlers: the redirect, then the code and state it came back with."""

    def __init__(self) -> None:
        self.count = 0
        self._callback: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.count += 1
        self._callback = await anyio.to_thread.run_sync(follow_redirects, authorization_url)

    async def callback(self) -> Any:
        assert self._callback is not None
        query = parse_qs(urlsplit(self._callback).query)
        code, state = query["code"][0], query.get("state", [None])[0]
        try:  # mcp 2.x: a model with the RFC 9207 iss too
            from mcp.shared.auth import AuthorizationCodeResult
        except ImportError:  # mcp 1.x: a tuple
            return code, state
        return AuthorizationCodeResult(code=code, state=state, iss=query.get("iss", [None])[0])


class Session:
    """One client's providers (one per server), their store, and how to call a tool."""

    def __init__(self, client: str, store_dir: Path) -> None:
        self.client = client
        self.store = TokenStore.default(store_dir)
        self.providers: dict[str, Any] = {}
        self.login = SDKLogin()

    def logins(self) -> int:
        return browser_logins() if self.client == "fastmcp" else self.login.count

    def provider(self, url: str) -> Any:
        if url not in self.providers:
            self.providers[url] = self._make(url)
        return self.providers[url]

    def _make(self, url: str) -> Any:
        if self.client == "fastmcp":
            from fastmcp.client.auth import OAuth

            return OAuth(url, token_storage=self.store.kv, callback_host="127.0.0.1")
        from mcp.client.auth import OAuthClientProvider
        from mcp.shared.auth import OAuthClientMetadata
        from pydantic import AnyUrl

        metadata = OAuthClientMetadata(
            client_name=f"foreign driver ({self.client})",
            redirect_uris=[AnyUrl("http://127.0.0.1:8765/callback")],  # never listened on
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        )
        return OAuthClientProvider(
            server_url=url,
            client_metadata=metadata,
            storage=SDKTokenStorage(url, self.store),
            redirect_handler=self.login.redirect,
            callback_handler=self.login.callback,
        )

    async def call(self, url: str, tools: list[tuple[str, dict[str, Any]]]) -> list[str]:
        auth = self.provider(url)
        texts = []
        if self.client == "fastmcp":
            from fastmcp import Client

            async with Client(url, auth=auth) as client:
                for name, args in tools:
                    texts.append(_text((await client.call_tool(name, args)).content))
        elif self.client == "sdk2":
            import httpx2
            from mcp.client.client import Client as SDKClient
            from mcp.client.streamable_http import streamable_http_client

            async with (
                httpx2.AsyncClient(auth=auth) as http,
                SDKClient(streamable_http_client(url, http_client=http)) as sdk,
            ):
                for name, args in tools:
                    texts.append(_text((await sdk.call_tool(name, args)).content))
        else:
            from mcp import ClientSession
            from mcp.client.streamable_http import streamablehttp_client

            async with (
                streamablehttp_client(url, auth=auth) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                for name, args in tools:
                    texts.append(_text((await session.call_tool(name, args)).content))
        return texts

    async def stored_expiry(self, url: str) -> float:
        """When the stored access token expires, as the client's own storage reads it."""
        if self.client == "fastmcp":
            from fastmcp.client.auth.oauth import TokenStorageAdapter

            expiry = await TokenStorageAdapter(self.store.kv, server_url=url).get_token_expiry()
            assert expiry is not None, "FastMCP stored no expiry"
            return expiry
        tokens = await SDKTokenStorage(url, self.store).get_tokens()
        assert tokens is not None and tokens.expires_in is not None, "no token stored"
        return time.time() + tokens.expires_in


def _text(content: Any) -> str:
    return "".join(str(getattr(c, "text", "")) for c in content)


async def call(session: Session, step: dict[str, Any]) -> dict[str, Any]:
    tools = []
    for spec in step.get("tools", []):
        name, _, text = spec.partition("=")
        tools.append((name, {"text": text}))
    requests.clear()
    before = session.logins()
    report: dict[str, Any] = {"started": time.time()}
    try:
        report["texts"] = await session.call(step["url"], tools)
    except BaseException as exc:  # a report either way: the test decides
        report["error"] = describe(exc)
    report.update(logins=session.logins() - before, requests=list(requests))
    return report


async def run(args: argparse.Namespace) -> dict[str, Any]:
    session = Session(args.client, args.store)
    output: dict[str, Any] = {"client": args.client, "steps": {}}
    try:
        for step in json.loads(args.plan):
            if "call" in step:
                output["steps"][step["call"]] = await call(session, step)
            elif "wait_for_go" in step:
                await anyio.to_thread.run_sync(sys.stdin.readline)
            elif "wait_for_expiry" in step:
                expiry = await session.stored_expiry(step["wait_for_expiry"])
                if expiry - time.time() > 120:
                    raise RuntimeError(f"the token is valid for {expiry - time.time():.0f} s more")
                await anyio.sleep(max(0.0, expiry - time.time() + 1.0))
            else:
                raise ValueError(f"unknown step {step}")
    except Exception as exc:
        output["error"] = describe(exc)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--store", type=Path, required=True, help="the token store's folder")
    parser.add_argument("--plan", required=True, help="the steps, as JSON: see the tests")
    args = parser.parse_args(argv)
    if args.client == "sdk1":
        import httpx

        instrument(httpx)
    else:
        instrument(__import__("httpx2"))
    if args.client == "fastmcp":
        import fastmcp  # noqa: F401  (imported before the first step, as the others are)
    output = anyio.run(run, args)
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
