"""The proxy's parts put together: options, the provider over the default store, the HTTP
client, the relay."""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import httpx

from .. import OAuthClientProvider, TokenStore
from ..proxy_env import environment_names_a_proxy
from ..server_text import clean_text
from ..url_rules import secure_resource_url
from . import jsonrpc
from .connect import Connector, TransportChoice
from .errors import RelayError
from .headers import parse_header_option
from .keepalive import KeepAliveTransport
from .login import ProxyLogin, checked_opener
from .pending import Pending
from .relay import Relay
from .stdio import HostOutput, host_lines

logger = logging.getLogger("mcp_client_auth.proxy")

CLIENT_NAME = "mcp-client-auth"  # the CLI's own: a login by `login` and one by the proxy match
CONNECT_TIMEOUT = 30.0
HANDSHAKE_VERSION = "2025-11-25"  # what --check offers; servers answer with theirs


@dataclass
class ProxyOptions:
    """What ``mcp-client-auth proxy`` takes, as a library call takes it."""

    url: str
    headers: Sequence[str] = ()  # NAME:VALUE, environment variables expanded
    allow_http: bool = False
    port: int | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: Sequence[str] | None = None
    store: str | None = None
    transport: TransportChoice = "http-first"
    login_timeout: float = 300.0
    extra: dict[str, Any] = field(default_factory=dict)  # more provider keywords

    def login_hint(self) -> str:
        command = ["mcp-client-auth", "login", self.url]
        if self.store:
            command += ["--store", self.store]
        if self.client_id:
            command += ["--client-id", self.client_id]
        if self.port:
            command += ["--port", str(self.port)]
        return f"To sign in, run `{shlex.join(command)}`, then retry"


def check_options(options: ProxyOptions) -> None:
    """:class:`ConfigurationError` for a URL or a header the proxy cannot use."""
    _check_url(options)
    user_headers(options)


def _check_url(options: ProxyOptions) -> None:
    secure_resource_url(options.url, allow_insecure_http=options.allow_http)


def make_provider(options: ProxyOptions) -> OAuthClientProvider:
    """The provider over the default encrypted store, signing in through the browser."""
    keywords: dict[str, Any] = dict(options.extra)
    return OAuthClientProvider(
        options.url,
        scopes=list(options.scopes) if options.scopes else None,
        client_name=CLIENT_NAME,
        client_id=options.client_id,
        client_secret=options.client_secret,
        redirect_port=options.port,
        store=TokenStore.default(options.store),
        login=ProxyLogin(port=options.port, opener=checked_opener, output=sys.stderr),
        timeout=options.login_timeout,
        allow_insecure_http=options.allow_http,
        **keywords,
    )


def make_client(options: ProxyOptions, auth: httpx.Auth | None) -> httpx.AsyncClient:
    """Long reads (a tool may run for minutes; the server's own stream idles for hours), a
    bounded connect, no redirects (a redirected POST would lose its body, and the token must
    not follow it). The environment's proxy and CA settings apply (``HTTPS_PROXY``,
    ``NO_PROXY``, ``SSL_CERT_FILE``), as users of a desktop machine behind a corporate proxy
    expect (through httpx's own transport when a proxy is named; else through the lean
    :class:`~.keepalive.KeepAliveTransport`); ``.netrc`` does not (the provider is the auth)."""
    transport = None if environment_names_a_proxy() else KeepAliveTransport()
    return httpx.AsyncClient(
        auth=auth,
        timeout=httpx.Timeout(CONNECT_TIMEOUT, read=None),
        follow_redirects=False,
        transport=transport,
    )


def user_headers(options: ProxyOptions) -> dict[str, str]:
    return dict(parse_header_option(h) for h in options.headers)


async def serve(
    options: ProxyOptions,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    auth: httpx.Auth | None = None,
) -> None:
    """Relay between the host (``stdin``/``stdout``) and the server until the host closes
    stdin. ``auth``: instead of the provider over the default store (tests, other auth)."""
    _check_url(options)
    headers = user_headers(options)
    output = HostOutput(stdout)
    provider = auth if auth is not None else make_provider(options)
    async with make_client(options, provider) as client:
        connector = Connector(
            options.url, client, output.send, headers=headers, choice=options.transport
        )
        relay = Relay(connector, output, url=options.url, login_hint=options.login_hint())
        await relay.run(host_lines(stdin))


def run_proxy(options: ProxyOptions) -> int:
    """Run the proxy on this process's stdin and stdout; the exit status."""
    from .stdio import protect_stdout

    protocol = protect_stdout()
    try:
        asyncio.run(serve(options, stdout=protocol))
    except KeyboardInterrupt:
        return 130
    return 0


async def check_server(options: ProxyOptions, *, auth: httpx.Auth | None = None) -> list[str]:
    """Connect, sign in if needed, and list the server's tools (``--check``): what a host
    would do first, so a working check means a working host configuration. A server that
    cannot be reached is a :class:`RelayError` naming it (the likeliest answer to a check)."""
    _check_url(options)
    try:
        return await _list_tools(options, auth)
    except httpx.TransportError as exc:
        reason = clean_text(str(exc) or type(exc).__name__)
        raise RelayError(f"could not reach {options.url}: {reason}") from None


async def _list_tools(options: ProxyOptions, auth: httpx.Auth | None) -> list[str]:
    answers: list[jsonrpc.Message] = []
    provider = auth if auth is not None else make_provider(options)
    async with make_client(options, provider) as client:
        connector = Connector(
            options.url,
            client,
            answers.append,
            headers=user_headers(options),
            choice=options.transport,
        )
        initialize = {
            "jsonrpc": "2.0",
            "id": "check-initialize",
            "method": "initialize",
            "params": {
                "protocolVersion": HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-client-auth proxy --check", "version": "1"},
            },
        }
        transport, sent = await connector(initialize, Pending(initialize))
        try:
            if not sent:
                await transport.send(initialize, Pending(initialize))
            _result(answers, "check-initialize")
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await transport.send(initialized, Pending(initialized))
            tools: list[str] = []
            cursor: Any = None
            for page in range(100):
                listing: dict[str, Any] = {"jsonrpc": "2.0", "id": f"check-tools-{page}"}
                listing["method"] = "tools/list"
                if cursor is not None:
                    listing["params"] = {"cursor": cursor}
                await transport.send(listing, Pending(listing))
                result = _result(answers, listing["id"])
                tools += [
                    str(t.get("name")) for t in result.get("tools", []) if isinstance(t, dict)
                ]
                cursor = result.get("nextCursor")
                if not cursor:
                    break
        finally:
            await transport.close()
    return tools


def _result(answers: Sequence[jsonrpc.Message], request_id: str) -> dict[str, Any]:
    for answer in answers:
        if isinstance(answer, dict) and answer.get("id") == request_id:
            if isinstance(answer.get("result"), dict):
                return dict(answer["result"])
            error = answer.get("error")
            text = error.get("message") if isinstance(error, dict) else None
            raise RelayError(f"the server refused {request_id.split('-')[1]}: {text!s:.300}")
    raise RelayError(f"the server did not answer {request_id.split('-')[1]}")
