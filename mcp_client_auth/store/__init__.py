"""Token storage: :class:`TokenStore` over any py-key-value-aio store.

The encrypted disk store (:mod:`.disk`), its key management (:mod:`.keys`) and file locks
(:mod:`.locks`) are imported by ``TokenStore.default()`` when first used, not here, so that
``import mcp_client_auth`` stays light.
"""

from __future__ import annotations

from .token_store import TokenStore

__all__ = ["TokenStore"]
