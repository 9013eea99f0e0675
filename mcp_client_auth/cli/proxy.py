"""``proxy URL``: the CLI's side of the proxy command, whose options and run live in
:mod:`mcp_client_auth.proxy.command`.

The proxy is a stdio MCP server for a desktop host: the protocol is spoken on the process's own
stdin and stdout, so this command takes no injected streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from .context import Context
    from .parser import Commands


def add_proxy(commands: Commands) -> None:
    from ..proxy.command import add_proxy_command

    add_proxy_command(commands)


def run_proxy(args: argparse.Namespace, context: Context) -> int:
    status: int = args.handler(args)  # set by add_proxy_command
    return status
