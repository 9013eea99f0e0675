"""The command-line tool's name for :func:`~mcp_client_auth.blocking.run_now`, until it calls
the public :func:`~mcp_client_auth.run_blocking` (then this module goes)."""

from __future__ import annotations

from .blocking import run_now as run_eagerly

__all__ = ["run_eagerly"]
