"""Keep the mcp SDK's own OAuthClientProvider (2.x), with its tokens in mcp-client-auth's store.

    pip install -e '.[httpx2]' 'mcp>=2'   # from a checkout of mcp-client-auth
    python examples/mcp_sdk_own_provider.py https://mcp.example.com/mcp [TOOL [JSON_ARGUMENTS]]
        [--port 8765]

The SDK leaves two things to you: where tokens are kept (``SDKTokenStorage``: encrypted files,
the key in the system keyring) and the browser login (here mcp-client-auth's ``BrowserLogin``:
the system browser, and a listener on 127.0.0.1 for the redirect). The redirect URI's port is
fixed: the SDK registers the client with it once and reuses that registration on later runs.
"""

import argparse
import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from mcp_sdk_client import list_or_call  # the same as the plain example
from pydantic import AnyUrl

from mcp_client_auth import BrowserLogin, SDKTokenStorage


class BrowserHandlers:
    """The SDK's ``redirect_handler`` and ``callback_handler``, by ``BrowserLogin``."""

    def __init__(self, port: int) -> None:
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"
        self._authorization_url = ""

    async def redirect_handler(self, authorization_url: str) -> None:
        self._authorization_url = authorization_url  # opened by callback_handler, listening

    async def callback_handler(self) -> AuthorizationCodeResult:
        url = self._authorization_url
        session = await BrowserLogin().start(redirect_uri=self.redirect_uri, redirect_port=None)
        try:
            state = parse_qs(urlsplit(url).query)["state"][0]
            back = parse_qs(urlsplit(await session.complete(url, state=state, timeout=300)).query)
        finally:
            await session.aclose()
        if "code" not in back:
            raise RuntimeError(f"the login was refused: {back.get('error', ['no code'])[0]}")
        return AuthorizationCodeResult(
            code=back["code"][0], state=back["state"][0], iss=back.get("iss", [None])[0]
        )


async def main(url: str, tool: str | None, arguments: dict[str, object], port: int) -> None:
    handlers = BrowserHandlers(port)
    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-client-auth example (the SDK's provider)",
            redirect_uris=[AnyUrl(handlers.redirect_uri)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=SDKTokenStorage(url),
        redirect_handler=handlers.redirect_handler,
        callback_handler=handlers.callback_handler,
    )
    await list_or_call(url, auth, tool, arguments)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("tool", nargs="?")
    parser.add_argument("arguments", nargs="?", type=json.loads, default={})
    parser.add_argument("--port", type=int, default=8765, help="the redirect URI's port")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.tool, args.arguments, args.port))
