"""Token storage: :class:`TokenStore` over any py-key-value-aio store."""

from __future__ import annotations

from .token_store import TokenStore

__all__ = ["TokenStore"]
