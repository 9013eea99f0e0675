"""Token storage: :class:`TokenStore` over any py-key-value-aio store.

The encrypted disk store (:mod:`.disk`), its key management (:mod:`.keys`) and file locks
(:mod:`.locks`) are imported by ``TokenStore.default()`` when first used, not here, so that
``import mcp_client_auth`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .token_store import RecordRead, SetAside, TokenStore

if TYPE_CHECKING:
    from .encrypted import EncryptedKeyValue

__all__ = ["EncryptedKeyValue", "RecordRead", "SetAside", "TokenStore"]


def __getattr__(name: str) -> Any:
    # on first use, as the rest of the package: it imports the disk store's encoding
    if name == "EncryptedKeyValue":
        from .encrypted import EncryptedKeyValue

        return EncryptedKeyValue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
