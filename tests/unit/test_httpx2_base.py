"""The provider is an ``httpx2.Auth`` without importing httpx2 itself.

A process that uses only httpx never imports httpx2 through this library; where the user
imports httpx2 later, its clients still take the provider (made before or after), and its
requests get the token. Run in a fresh interpreter, where nothing has imported httpx2 yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import httpx
    from mcp_client_auth import OAuthClientProvider, TokenStore
    from mcp_client_auth.tokens import ServerRecord, TokenSet

    URL = "https://mcp.example.com/mcp"
    store = TokenStore.memory()
    tokens = TokenSet("stored-token", expires_at=time.time() + 3600)
    asyncio.run(store.put(ServerRecord(resource=URL, tokens=tokens)))
    before = OAuthClientProvider(URL, store=store, interactive=False)
    seen = []

    with httpx.Client(
        auth=before,
        transport=httpx.MockTransport(lambda r: (seen.append(r.headers.get("authorization")),
                                                 httpx.Response(200))[1]),
    ) as client:
        client.get(URL)
    after_httpx = "httpx2" in sys.modules

    import httpx2

    after = OAuthClientProvider(URL, store=store, interactive=False)

    async def send(auth):
        transport = httpx2.MockTransport(
            lambda r: (seen.append(r.headers.get("authorization")), httpx2.Response(200))[1]
        )
        async with httpx2.AsyncClient(auth=auth, transport=transport) as client:
            return (await client.get(URL)).status_code

    statuses = [asyncio.run(send(before)), asyncio.run(send(after))]
    print(json.dumps({
        "httpx2_imported_by_httpx_use": after_httpx,
        "instances": [isinstance(p, httpx2.Auth) for p in (before, after)],
        "statuses": statuses,
        "seen": seen,
    }))
    """
)


def test_httpx2_is_taken_on_when_imported_later() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "httpx2_imported_by_httpx_use": False,
        "instances": [True, True],
        "statuses": [200, 200],
        "seen": ["Bearer stored-token"] * 3,
    }
