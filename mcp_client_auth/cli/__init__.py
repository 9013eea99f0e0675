"""The command-line tool ``mcp-client-auth``: login, token, status, logout, doctor, proxy.

How a shell script or a CLI tool authenticates to an OAuth-protected MCP server or API::

    curl -H "Authorization: Bearer $(mcp-client-auth token https://mcp.example.com/mcp)" ...

It is built on the library's public interface only: every name it imports from the package is
exported by ``mcp_client_auth``, so it can do nothing a user of the library could not, and it
finds exactly the entries the library writes.

The layout: :mod:`.main` is the entry point, :mod:`.parser` the command line, :mod:`.output`
how the tool speaks (stdout, stderr, exit codes), :mod:`.context` what every command is handed,
and one module per command (:mod:`.login`, :mod:`.token`, :mod:`.status`, :mod:`.logout`,
:mod:`.doctor`, :mod:`.proxy`), each run with injected streams.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
