"""A fleet of processes sharing one login through Redis.

    pip install -e '.[redis,httpx2]' 'mcp>=2'   # from a checkout of mcp-client-auth
    export MCP_CLIENT_AUTH_KEY=...   # the store's key: the same on every host (a Fernet key)
    python examples/redis_fleet.py https://mcp.example.com/mcp --redis redis://127.0.0.1:6379/0

Every worker runs the same code: a provider over one Redis-backed TokenStore (entries encrypted,
the refresh and login lock held in Redis). The first
worker that needs a token logs in (one browser window); the others wait for the lock, then find
the token in Redis. When it expires, one worker refreshes it and the others use the new one: a
rotated refresh token is never sent twice, which a server that detects reuse answers by revoking
the login of the whole fleet.
"""

import argparse
import asyncio
import multiprocessing

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_client_auth import OAuthClientProvider, TokenStore


async def worker(number: int, url: str, redis_url: str) -> None:
    store = TokenStore.redis(redis_url)  # the key: MCP_CLIENT_AUTH_KEY, or key=
    auth = OAuthClientProvider(url, client_name="mcp-client-auth fleet", store=store)
    async with (
        httpx2.AsyncClient(auth=auth) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = (await client.list_tools()).tools
        # One write per line: the workers share one stdout, and print() writes the text and the
        # newline separately, so two workers' lines could interleave.
        print(f"worker {number}: {len(tools)} tools\n", end="", flush=True)


def run(number: int, url: str, redis_url: str) -> None:
    asyncio.run(worker(number, url, redis_url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A fleet of MCP clients sharing one login.")
    parser.add_argument("url")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    fleet = [spawn.Process(target=run, args=(n, args.url, args.redis)) for n in range(args.workers)]
    for process in fleet:
        process.start()
    for process in fleet:
        process.join()
    raise SystemExit(1 if any(process.exitcode != 0 for process in fleet) else 0)
