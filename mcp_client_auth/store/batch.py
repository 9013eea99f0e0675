"""The batch half of py-key-value-aio's ``AsyncKeyValue`` protocol, from the single operations.

Both of our stores (files, Redis) answer a batch one entry at a time: each entry is its own
encrypted blob under its own hashed name, so there is nothing to gain from a batch call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

__all__ = ["BatchFromSingle"]


class BatchFromSingle:
    """Mixin: ``get_many``, ``ttl_many``, ``put_many``, ``delete_many`` over the single calls."""

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        raise NotImplementedError

    async def ttl(
        self, key: str, *, collection: str | None = None
    ) -> tuple[dict[str, Any] | None, float | None]:
        raise NotImplementedError

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        raise NotImplementedError

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        raise NotImplementedError

    async def get_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[dict[str, Any] | None]:
        return [await self.get(k, collection=collection) for k in keys]

    async def ttl_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[tuple[dict[str, Any] | None, float | None]]:
        return [await self.ttl(k, collection=collection) for k in keys]

    async def put_many(
        self,
        keys: Sequence[str],
        values: Sequence[Mapping[str, Any]],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        if len(keys) != len(values):
            raise ValueError("put_many needs as many values as keys")
        for k, v in zip(keys, values, strict=True):
            await self.put(k, v, collection=collection, ttl=ttl)

    async def delete_many(self, keys: Sequence[str], *, collection: str | None = None) -> int:
        return sum([await self.delete(k, collection=collection) for k in keys])
