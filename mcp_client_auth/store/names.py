"""Names the store's modules share, in a module that imports nothing of the package.

``TokenStore`` keeps its records under :data:`COLLECTION`, and the encrypted store's rotation
must know that name to find them (the names underneath are hashes); keeping it here lets both
read it without either importing the other.
"""

from __future__ import annotations

__all__ = ["COLLECTION", "DEFAULT_PREFIX"]

COLLECTION = "mcp-client-auth"
"""The collection ``TokenStore`` keeps its server records in."""

DEFAULT_PREFIX = "mcp-client-auth"
"""What the names of a store kept in a key-value store (Redis, one's own) start with."""
