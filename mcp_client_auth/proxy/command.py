"""The ``proxy`` command of the CLI: its options (what users of mcp-remote expect) and its run.

Imported by the CLI's parser on every run, ``token`` included: only argparse at import time;
the proxy itself is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

TRANSPORT_CHOICES = ("http-first", "sse-first", "http-only", "sse-only")


def add_proxy_command(commands: Any) -> None:
    """Add ``proxy`` to the CLI's subcommands (``commands``: argparse's subparsers action)."""
    proxy = commands.add_parser(
        "proxy",
        help="serve a remote OAuth-protected MCP server to a desktop host over stdio",
        description=(
            "A stdio MCP server for a desktop host (its mcpServers configuration), relaying "
            "every message to the remote MCP server at URL with the stored login (the browser "
            "opens on first use). stdout carries only protocol messages; logs go to stderr."
        ),
    )
    proxy.add_argument("server_url", metavar="URL", help="the remote MCP endpoint")
    proxy.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="an extra HTTP header on every request (repeat; $VAR and ${VAR} are expanded)",
    )
    proxy.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http to a server that is not on loopback (development only)",
    )
    proxy.add_argument("--port", type=int, metavar="N", help="fixed loopback port for the login")
    proxy.add_argument("--client-id", metavar="ID", help="a pre-registered client ID")
    proxy.add_argument(
        "--client-secret",
        metavar="SECRET",
        help="its secret; give it as $VAR or ${VAR} (expanded here) to keep it out of ps",
    )
    proxy.add_argument("--scope", action="append", metavar="S", help="a scope to ask for")
    proxy.add_argument("--store", metavar="DIR", help="the token store folder")
    proxy.add_argument(
        "--debug",
        dest="debug_file",
        metavar="FILE",
        help="write a detailed log (no secrets) to FILE",
    )
    proxy.add_argument(
        "--transport",
        choices=TRANSPORT_CHOICES,
        default="http-first",
        help="streamable HTTP, legacy HTTP+SSE, or one then the other (default: http-first)",
    )
    proxy.add_argument(
        "--login-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="the longest a browser login may take (default: 300)",
    )
    proxy.add_argument(
        "--check",
        action="store_true",
        help="connect, sign in if needed, list the tools on stdout, and exit",
    )
    proxy.set_defaults(handler=cmd_proxy, parser=proxy)


def cmd_proxy(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from .headers import expand_variables
    from .session import ProxyOptions, check_options

    parser: argparse.ArgumentParser = args.parser
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    if args.debug_file:
        _log_to(args.debug_file)
    try:
        secret = expand_variables(args.client_secret) if args.client_secret else None
    except ConfigurationError as exc:
        parser.error(str(exc))
    options = ProxyOptions(
        url=args.server_url,
        headers=args.header,
        allow_http=args.allow_http,
        port=args.port,
        client_id=args.client_id,
        client_secret=secret,
        scopes=[s for scope in args.scope or () for s in scope.split()] or None,
        store=args.store,
        transport=args.transport,
        login_timeout=args.login_timeout,
    )
    try:
        check_options(options)
    except ConfigurationError as exc:
        parser.error(str(exc))
    if args.check:
        return _check(options)
    from .session import run_proxy

    return run_proxy(options)


def _check(options: Any) -> int:
    import asyncio

    from .session import check_server

    tools = asyncio.run(check_server(options))
    sys.stderr.write(f"Connected to {options.url}: {len(tools)} tools\n")
    for name in tools:
        sys.stdout.write(f"{name}\n")
    return 0


def _log_to(path: str) -> None:
    import logging

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    for name in ("mcp_client_auth", "httpx"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    for stream_handler in logging.getLogger("mcp_client_auth").handlers:
        if stream_handler is not handler:
            stream_handler.setLevel(logging.WARNING)  # stderr stays as quiet as without --debug
