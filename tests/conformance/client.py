"""The client that the official MCP conformance suite drives (see README.md beside this file).

    tests/conformance/run_auth.sh ".venv/bin/python tests/conformance/client.py"

The suite runs ``client.py <server-url>`` once per scenario, with ``MCP_CONFORMANCE_SCENARIO``
(the scenario name), ``MCP_CONFORMANCE_PROTOCOL_VERSION`` (0.2+: the MCP version the mock server
speaks) and, for scenarios that hand out credentials, ``MCP_CONFORMANCE_CONTEXT`` (JSON).

Authorization uses mcp_client_auth's public API only, exactly as an application would; the MCP
session is the official SDK's (mcp 2.x, on httpx2). The "browser" is a GET of the authorization
URL without following redirects: the mock authorization server approves at once and answers 302
to the redirect URI, and that Location is what a browser would have been sent back to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any
from urllib.parse import urljoin

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_client_auth import (
    ClientCredentials,
    IdentityAssertion,
    IdJagExchange,
    OAuthClientProvider,
    TokenStore,
)

# The client ID metadata document URL that auth/basic-cimd expects as client_id.
CIMD_URL = "https://conformance-test.local/client-metadata.json"
# MCP versions the SDK speaks without an initialize handshake (stateless, one request each).
MODERN_PROTOCOL_VERSIONS = ("2026-07-28",)

CLIENT_CREDENTIALS_SCENARIOS = ("auth/client-credentials-basic", "auth/client-credentials-jwt")
# SEP-990 enterprise-managed authorization: 0.1.16 and 0.2 names of the same scenario.
IDENTITY_ASSERTION_SCENARIOS = (
    "auth/cross-app-access-complete-flow",
    "auth/enterprise-managed-authorization",
)
# SEP-1933 workload identity federation: the JWT bearer grant with the platform's token.
WORKLOAD_IDENTITY_SCENARIOS = ("auth/wif-jwt-bearer",)

log = logging.getLogger("conformance-client")


async def headless_browser(authorization_url: str) -> str:
    """The ``login`` callable: where the authorization server sends the browser back to."""
    async with httpx2.AsyncClient(timeout=10.0) as http:
        response = await http.get(authorization_url)  # httpx2 does not follow redirects
    location = response.headers.get("location")
    if not response.is_redirect or not location:
        raise RuntimeError(
            f"authorization endpoint answered {response.status_code}, not a redirect: "
            f"{response.text[:200]}"
        )
    return urljoin(authorization_url, location)


def scenario_context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    return json.loads(raw) if raw else {}


def build_auth(scenario: str, server_url: str, context: dict[str, Any]) -> httpx2.Auth:
    store = TokenStore.memory()
    if scenario in CLIENT_CREDENTIALS_SCENARIOS:
        return ClientCredentials(
            server_url,
            client_id=context["client_id"],
            client_secret=context.get("client_secret"),
            private_key=context.get("private_key_pem"),
            signing_algorithm=context.get("signing_algorithm", "RS256"),
            store=store,
        )
    if scenario in IDENTITY_ASSERTION_SCENARIOS:
        # SEP-990: the IdP's ID token is traded for an ID-JAG at the IdP (RFC 8693), then the
        # JWT bearer grant at the MCP server's authorization server; the library does both.
        return IdentityAssertion(
            server_url,
            client_id=context["client_id"],
            client_secret=context["client_secret"],
            assertion=IdJagExchange(
                context["idp_token_endpoint"],
                id_token=context["idp_id_token"],
                client_id=context.get("idp_client_id", ""),
            ),
            store=store,
        )
    if scenario in WORKLOAD_IDENTITY_SCENARIOS:
        # The platform-issued workload token, audience the authorization server.
        return IdentityAssertion(
            server_url,
            client_id=context.get("client_id"),
            assertion=context["valid_jwt"],
            store=store,
        )
    # Every other auth/* scenario: the authorization code flow. Pre-registered credentials come
    # from the context where the scenario hands them out (auth/pre-registration); the client ID
    # metadata document URL is used only where the server advertises support for it.
    return OAuthClientProvider(
        server_url,
        client_name="mcp-client-auth conformance client",
        client_id=context.get("client_id"),
        client_secret=context.get("client_secret"),
        client_metadata_url=CIMD_URL,
        store=store,
        login=headless_browser,
        timeout=20.0,
    )


async def run_session(server_url: str, auth: httpx2.Auth) -> None:
    """Connect, list the tools, call the first one: what every auth scenario expects."""
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "")
    mode = version if version in MODERN_PROTOCOL_VERSIONS else "legacy"
    async with httpx2.AsyncClient(auth=auth, timeout=20.0) as http:
        transport = streamable_http_client(server_url, http_client=http)
        async with Client(transport, mode=mode, raise_exceptions=True) as client:
            tools = (await client.list_tools()).tools
            log.info("tools: %s", [tool.name for tool in tools])
            if tools:
                result = await client.call_tool(tools[0].name, {})
                log.info("%s -> %s", tools[0].name, result)


def main() -> int:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} <server-url>", file=sys.stderr)
        return 2
    server_url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    auth = build_auth(scenario, server_url, scenario_context())
    asyncio.run(run_session(server_url, auth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
