"""mcp-client-auth in one command: log in to an MCP server, reuse the tokens, refresh them.

    python examples/quickstart.py            # consent approved automatically
    python examples/quickstart.py --browser  # your browser opens; click Approve

Nothing outside this machine is involved: the script starts, on 127.0.0.1, a demo OAuth 2.1
authorization server and a demo MCP server (the ``mcp`` SDK's own, acting as a resource server),
then walks through what a user of the library sees:

1. a first client meets a 401, discovers the authorization server, registers, logs in (PKCE)
   and calls a tool;
2. a restart: a new process, sharing only the token store (the same folder, the same key),
   calls a tool with the stored token: no login, no discovery, no request to the authorization
   server;
3. the access token expires, and that process refreshes it silently (one token request);
4. a tool that needs one more scope: the server answers 403 ``insufficient_scope`` and the
   client logs in again for exactly that (step-up).

Steps 2 and 3 run in a child process (this script with ``--restarted``), which reports what it
sent, step by step, so the authorization server's own counts (kept in this process, which runs
the demo servers) can be printed beside them. It counts every HTTP request the clients make (an
httpx2 event hook on the MCP client, and a recording transport for the provider's own requests)
so each claim is a number, and it never prints a token. The tokens go to an encrypted store
as ``TokenStore.default`` makes it (key in the system keyring, else a key file), in a temporary
folder, never the user's own store: at the end the folder and its key are removed, since the
demo servers, and so its tokens, are gone. ``--home DIR`` uses that folder instead, and removes
only the demo's record from it; ``--keep`` keeps everything, and says where.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

try:
    import httpx2
    from demo_servers import PROFILE_SCOPE, DemoServers, start_demo_servers
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
except ImportError as exc:  # pragma: no cover - a set-up message, not logic
    sys.exit(
        f"The quickstart needs the demo extra ({exc.name} is missing): "
        "pip install -e '.[demo]' in a checkout of mcp-client-auth"
    )

from mcp_client_auth import MCPAuthError, OAuthClientProvider, TokenStore

CLIENT_NAME = "mcp-client-auth quickstart"


class DemoError(Exception):
    """Something in the demo itself went wrong (not the library): said plainly, then exit 1."""


# -- counting requests -------------------------------------------------------------------------


@dataclasses.dataclass
class Traffic:
    """Every request the clients send, sorted by where it went.

    The MCP client's requests are seen by an event hook on its httpx2 client. The provider
    sends discovery, registration and token requests with a client of its own, whose transport
    (``transport=`` of the provider) records them here too.
    """

    mcp_url: str
    issuer: str
    seen: list[str] = dataclasses.field(default_factory=list)

    async def hook(self, request: httpx2.Request) -> None:
        self.seen.append(self.kind(str(request.url)))

    def transport(self) -> httpx2.AsyncBaseTransport:
        traffic = self

        class Recording(httpx2.AsyncHTTPTransport):
            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                await traffic.hook(request)
                return await super().handle_async_request(request)

        return Recording()

    def kind(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.path.startswith("/.well-known/"):
            return "discovery"
        if url.split("?")[0] == self.mcp_url:
            return "mcp"
        if url.startswith(self.issuer + "/"):
            return parts.path.strip("/")  # register, token, revoke
        return "other"

    @contextmanager
    def window(self) -> Iterator[Counter[str]]:
        """Count what is sent inside the ``with`` block."""
        counts: Counter[str] = Counter()
        start = len(self.seen)
        try:
            yield counts
        finally:
            counts.update(self.seen[start:])


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- the login: a browser, or a stand-in for one -------------------------------------------------


class AutoApprove:
    """Plays the user's browser when consent is automatic.

    A login callable receives the authorization URL and returns the URL the browser was sent
    back to. The demo authorization server approves at once and redirects, so one GET (without
    following the redirect) gives that URL: the ``Location`` header, with ``code``, ``state``
    and ``iss``. It only visits the demo server, so it cannot be pointed elsewhere.
    """

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    async def __call__(self, authorization_url: str) -> str:
        if not authorization_url.startswith(self.issuer + "/"):
            raise DemoError(f"refusing to visit {authorization_url}: not the demo server")
        async with httpx2.AsyncClient(timeout=10.0) as browser:
            response = await browser.get(authorization_url)
        location = response.headers.get("location")
        if response.status_code not in (302, 303) or not isinstance(location, str):
            raise DemoError(f"the authorization server answered {response.status_code}")
        return location


# -- the walk-through --------------------------------------------------------------------------


def open_store(home: str | None) -> TokenStore:
    """The default encrypted store (``TokenStore.default``), else an in-memory one."""
    default: Callable[..., TokenStore] | None = getattr(TokenStore, "default", None)
    if default is None:  # an older checkout without the disk store
        return TokenStore.memory()
    return default(home)


def store_summary(store: TokenStore) -> str:
    protection: Any = getattr(store, "protection", None)
    where = store.description
    if protection is not None and getattr(protection, "kind", None):
        where += f"; key: {protection.kind} ({protection.where})"
    return where


async def call(
    provider: OAuthClientProvider, traffic: Traffic, tool: str, arguments: dict[str, Any]
) -> str:
    """Connect with the mcp SDK over httpx2, ``auth=provider``; call one tool; return its text."""
    async with (
        httpx2.AsyncClient(auth=provider, event_hooks={"request": [traffic.hook]}) as http,
        Client(streamable_http_client(traffic.mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise DemoError(f"{tool} failed: {result.content}")
    value = result.structured_content
    if value is not None and "result" in value:
        return str(value["result"])
    if value is not None and "subject" in value:  # whoami: who, and with which scopes
        return f"subject {value['subject']}, scopes {' '.join(value['scopes'])}"
    return " ".join(getattr(c, "text", "") for c in result.content)


async def expire_stored_token(store: TokenStore, resource: str) -> str | None:
    """Mark the stored access token expired, as if an hour had gone by; keep the refresh token.

    Why not wait for a real expiry: the provider renews tokens a minute before they expire, so
    a short-lived token would be refreshed on every request and step 2 could not show reuse.
    Returns the refresh token (compared, never printed) so step 3 can tell it was rotated.
    """
    record = await store.get(resource)
    if record is None or record.tokens is None:
        raise DemoError("no stored tokens to expire")
    tokens = dataclasses.replace(record.tokens, expires_at=time.time() - 1)
    await store.put(dataclasses.replace(record, tokens=tokens))
    return record.tokens.refresh_token


def say(text: str) -> None:
    """Print one paragraph of narration, indented under its step."""
    print(
        textwrap.fill(
            text,
            width=92,
            initial_indent="   ",
            subsequent_indent="   ",
            break_long_words=False,
            break_on_hyphens=False,  # keep URLs and paths whole
        )
    )


def describe(counts: Counter[str]) -> str:
    """'7 HTTP requests: 4 to the MCP server, 2 discovery, 1 token' (or 'all to the MCP server')."""
    total = sum(counts.values())
    if total and counts["mcp"] == total:
        return f"{plural(total, 'HTTP request')}, all to the MCP server"
    names = {"mcp": "to the MCP server", "discovery": "discovery", "register": "registration"}
    parts = [f"{n} {names.get(k, k)}" for k, n in counts.most_common()]
    return f"{plural(total, 'HTTP request')}: {', '.join(parts)}"


async def walk_through(
    demo: DemoServers, store: TokenStore, home: str | None, browser: bool
) -> None:
    traffic = Traffic(demo.mcp_url, demo.issuer)
    stats = demo.authorization_server.stats
    url = demo.mcp_url
    login = None if browser else AutoApprove(demo.issuer)

    def delta(before: Counter[str], key: str) -> int:
        return stats[key] - before[key]

    print("\n1. First client: no tokens yet, so it logs in")
    if browser:
        say("Your browser opens on the demo server's consent page: click Approve.")
    before = Counter(stats)
    own = traffic.transport()  # the providers' own requests, counted
    first = OAuthClientProvider(
        url, client_name=CLIENT_NAME, store=store, login=login, transport=own
    )
    with traffic.window() as counts:
        text = await call(first, traffic, "add", {"a": 2, "b": 3})
    say(f"add(2, 3) = {text}")
    say(
        f"Logged in: the MCP server answered 401, and its challenge led the client to the "
        f"authorization server ({plural(counts['discovery'], 'metadata request')}). The client "
        f"registered itself ({plural(delta(before, 'registrations'), 'registration')}), "
        f"{'you approved' if browser else 'consent was approved automatically'} "
        f"({plural(delta(before, 'authorizations'), 'login')}, PKCE S256, resource indicator), "
        f"and it exchanged the code for tokens. {describe(counts)}."
    )
    say(f"Tokens stored in {store_summary(store)}.")

    async with restarted_process(demo, home) as restarted:
        print("\n2. A restart: a new process, which shares only the token store with this one")
        before = Counter(stats)
        report = await restarted.step("reuse")
        say(f"echo('hello again') = {report.text}")
        say(
            f"Reused the stored tokens: {describe(report.requests)}; "
            f"{plural(delta(before, 'authorizations'), 'login')}, "
            f"{plural(report.requests['discovery'], 'discovery request')}, "
            f"{plural(delta(before, 'access_tokens'), 'token request')}. "
            f"(Process {report.pid}, not this one, {os.getpid()}; it may not even start a "
            "login: interactive=False.)"
        )

        print("\n3. Silent refresh: the access token has expired")
        old_refresh = await expire_stored_token(store, url)
        say("The demo marks the stored access token expired, as if an hour had passed.")
        before = Counter(stats)
        report = await restarted.step("refresh")
    record = await store.get(url)
    new_refresh = record.tokens.refresh_token if record and record.tokens else None
    say(f"add(40, 2) = {report.text}")
    rotation = (
        "rotated, and the new one stored"
        if new_refresh and new_refresh != old_refresh
        else "kept (the server sent no new one)"
    )
    say(
        "Refreshed silently before sending: "
        f"{plural(delta(before, 'refreshes'), 'refresh')}, "
        f"{plural(delta(before, 'authorizations'), 'login')}; the refresh token was {rotation}. "
        f"{describe(report.requests)}, from the restarted process."
    )

    print(f"\n4. Step-up: whoami needs the {PROFILE_SCOPE} scope, which nobody asked for yet")
    if browser:
        say("Your browser opens again, for the wider scope: click Approve.")
    before = Counter(stats)
    fourth = OAuthClientProvider(
        url, client_name=CLIENT_NAME, store=store, login=login, transport=own
    )
    with traffic.window() as counts:
        text = await call(fourth, traffic, "whoami", {})
    say(f"whoami() = {text}")
    say(
        f"The server answered 403 insufficient_scope; the client logged in again for the wider "
        f"scope ({plural(delta(before, 'authorizations'), 'login')}) and retried. "
        f"{describe(counts)}."
    )


# -- steps 2 and 3: a restart, in a child process ---------------------------------------------

# What the restarted process does at each step: a tool and its arguments.
RESTART_STEPS: dict[str, tuple[str, dict[str, Any]]] = {
    "reuse": ("echo", {"text": "hello again"}),
    "refresh": ("add", {"a": 40, "b": 2}),
}


@dataclasses.dataclass
class Report:
    """What the restarted process did in one step: the tool's answer and the requests it sent."""

    text: str
    requests: Counter[str]
    pid: int


class Restarted:
    """The parent's handle on the restarted process: one step per line it writes, one JSON
    line back per step. Stepwise, so that the authorization server's counts, kept in this
    process, can be read between the steps."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def step(self, name: str) -> Report:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{name}\n".encode())
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            code = await self.process.wait()
            raise DemoError(f"the restarted process stopped (exit {code}) at step {name!r}")
        answer = json.loads(line)
        return Report(answer["text"], Counter(answer["requests"]), answer["pid"])


@asynccontextmanager
async def restarted_process(demo: DemoServers, home: str | None) -> AsyncIterator[Restarted]:
    """This script again, with ``--restarted``: a new process that shares nothing with this one
    but the token store. Why a process and not a new provider object: only a new process shows
    that nothing was kept in memory. It inherits the environment, so it opens the same store
    folder with the same key (``MCP_CLIENT_AUTH_HOME``, ``MCP_CLIENT_AUTH_KEY``, or the keyring
    entry or key file of that folder)."""
    argv = [__file__, "--restarted", demo.mcp_url, demo.issuer]
    if home is not None:
        argv += ["--home", home]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        yield Restarted(process)
    except BaseException:
        process.kill()
        raise
    finally:
        if process.stdin is not None:
            process.stdin.close()  # end of the steps: the child exits
        await process.wait()


async def serve_restarted(mcp_url: str, issuer: str, home: str | None) -> int:
    """The restarted process: for each step named on stdin, a new provider over the default
    store, which may not log in (``interactive=False``), calls the step's tool; one JSON line
    on stdout says what came back and what was sent (never a token)."""
    # The parent has already said, once, how this store's key is protected (a warning when it
    # is only a key file); the same store in this process would say it again, word for word.
    logging.getLogger("mcp_client_auth.store").setLevel(logging.ERROR)
    store = open_store(home)
    traffic = Traffic(mcp_url, issuer)
    own = traffic.transport()
    while name := (await asyncio.to_thread(sys.stdin.readline)).strip():
        tool, arguments = RESTART_STEPS[name]
        provider = OAuthClientProvider(
            mcp_url, client_name=CLIENT_NAME, store=store, interactive=False, transport=own
        )
        try:
            with traffic.window() as counts:
                text = await call(provider, traffic, tool, arguments)
        except Exception as exc:
            reason = find_reason(exc)
            if reason is None:
                raise
            print(f"Stopped, in the restarted process: {reason}", file=sys.stderr)
            return 1
        print(json.dumps({"text": text, "requests": counts, "pid": os.getpid()}), flush=True)
    return 0


def find_reason(exc: BaseException) -> BaseException | None:
    """The library's error (or ours) inside what the mcp SDK raised: its task groups wrap
    errors in exception groups, and a person should read the message, not the traceback."""
    if isinstance(exc, (MCPAuthError, DemoError)):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = find_reason(inner)
        if found is not None:
            return found
    return None


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--browser", action="store_true", help="log in with your browser (click Approve)"
    )
    parser.add_argument(
        "--home", help="token store folder (default: a temporary one, removed at the end)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the demo's tokens and store at the end"
    )
    parser.add_argument(
        "--restarted", nargs=2, metavar=("MCP_URL", "ISSUER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.restarted:
        mcp_url, issuer = args.restarted
        return await serve_restarted(mcp_url, issuer, args.home)

    home = args.home or tempfile.mkdtemp(prefix="mcp-client-auth-quickstart-")
    demo = start_demo_servers(auto_approve=not args.browser)
    print("mcp-client-auth quickstart: everything runs on this machine, on 127.0.0.1")
    print(f"   demo authorization server  {demo.issuer}")
    print(f"   demo MCP server            {demo.mcp_url}")
    print(
        "   consent                    "
        + ("in your browser" if args.browser else "approved automatically (--browser to click)")
    )
    store: TokenStore | None = None
    try:
        store = open_store(home)
        await walk_through(demo, store, home, args.browser)
    except Exception as exc:
        reason = find_reason(exc)
        if reason is None:
            raise
        print(f"\nStopped: {reason}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
        if not args.keep:
            await clean_up(store, demo.mcp_url, home, temporary=args.home is None)
    if args.keep:
        ending = f"kept in the store ({home})."
    elif args.home is None:
        ending = "removed with its temporary store and key (its servers are gone)."
    else:
        ending = "removed from the store (its servers are gone)."
    print(f"\nDone. No token was printed; the demo's record was {ending}")
    return 0


async def clean_up(store: TokenStore | None, url: str, home: str, *, temporary: bool) -> None:
    """Leave nothing of the demo behind: its record, or a temporary store with its key."""
    try:
        if temporary:
            TokenStore.remove_default_key(home)
            shutil.rmtree(home, ignore_errors=True)
        elif store is not None:
            await store.delete(url)
    except MCPAuthError as exc:
        print(f"Could not remove the demo's record: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
