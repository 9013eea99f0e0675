"""``mcp-client-auth proxy URL``: a stdio MCP server for a desktop host, relaying to a remote,
OAuth-protected MCP server over streamable HTTP (or legacy HTTP+SSE), with
:class:`~mcp_client_auth.OAuthClientProvider` and the encrypted store in between.

Library use::

    from mcp_client_auth.proxy import ProxyOptions, run_proxy
    raise SystemExit(run_proxy(ProxyOptions(url="https://mcp.example.com/mcp")))

Small modules, one job each: :mod:`.stdio` (the host's lines), :mod:`.streamable` and
:mod:`.legacy` (the remote side), :mod:`.sse` (event streams), :mod:`.headers` (what each
protocol revision puts in headers), :mod:`.relay` (an answer for every request),
:mod:`.session` (the provider, the client and the options), :mod:`.check` (``--check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .session import ProxyOptions, check_options, check_server, run_proxy, serve

__all__ = ["ProxyOptions", "check_options", "check_server", "run_proxy", "serve"]

# The CLI builds its parser from .command on every run (`token` too): nothing heavy here.
__getattr__, __dir__ = lazy_names(__name__, dict.fromkeys(__all__, ".session"), globals())
