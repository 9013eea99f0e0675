"""The mcp SDK's ``TokenStorage`` over a :class:`~mcp_client_auth.TokenStore`.

For code that keeps the SDK's own ``OAuthClientProvider`` (1.x or 2.x: the protocol has the
same four methods in both) and only lacks a place for its tokens: the SDK ships none. One
:class:`SDKTokenStorage` serves one server, as the SDK's provider expects; any number of them
share one store, each under its server's canonical URL, beside (never inside) the records of
this library's own provider.

Importing this module imports neither ``mcp`` nor pydantic: the SDK's models are imported by
the first call, which in practice only the SDK (already imported) makes. So
``mcp_client_auth`` can name this class without making ``mcp`` a dependency.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, TokenError
from .tokens import token_lifetime
from .urls import canonical_resource_url

if TYPE_CHECKING:
    from mcp.client.auth import TokenStorage
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

    from .store import TokenStore

__all__ = ["CLIENTS_COLLECTION", "TOKENS_COLLECTION", "SDKTokenStorage"]

# Collections of their own: the SDK's client registrations are made with its redirect URIs and
# its metadata, so they are not this library's records and must not be read as such.
TOKENS_COLLECTION = "mcp-sdk-tokens"
CLIENTS_COLLECTION = "mcp-sdk-clients"


class SDKTokenStorage:
    """The mcp SDK's ``TokenStorage`` for one server, kept in a :class:`TokenStore`.

    ``SDKTokenStorage(server_url)`` keeps the SDK provider's tokens and client registration in
    ``TokenStore.default()`` (encrypted files, the key in the system keyring), made on first
    use; ``store=`` names another (``TokenStore.redis(...)``, ``TokenStore.memory()``). Entries
    are keyed by the canonical form of ``server_url``, so two spellings of one server share
    them and each server has its own.

    What the SDK gets back differs from what it gave in one way: ``expires_in`` is what is
    left of the token's lifetime when it is read, not what the server said when it was issued
    (the stored expiry is absolute), so a token read after a restart is never taken for newer
    than it is. A stored value that is not a token or a registration (written by another
    program, or by a newer version) is set aside with a WARNING and reads as absent: the SDK
    then logs in again, and nothing is deleted.
    """

    def __init__(self, server_url: str, store: TokenStore | None = None) -> None:
        from .store import TokenStore

        if store is not None and not isinstance(store, TokenStore):
            raise ConfigurationError(
                f"store= takes a TokenStore, not a {type(store).__name__}: for a py-key-value-aio "
                "store of your own, pass TokenStore(kv), or "
                "TokenStore(EncryptedKeyValue(kv, key=...)) to keep it encrypted"
            )
        self.resource = canonical_resource_url(server_url)
        self._store = store

    @property
    def store(self) -> TokenStore:
        """The token store (``TokenStore.default()`` unless one was given), made on first use."""
        if self._store is None:
            from .store import TokenStore

            self._store = TokenStore.default()
        return self._store

    async def get_tokens(self) -> OAuthToken | None:
        """The stored tokens, ``expires_in`` counted from now; None when none are stored."""
        from mcp.shared.auth import OAuthToken  # both SDK lines keep it there

        value = await self._read(TOKENS_COLLECTION)
        if value is None:
            return None
        try:
            token = OAuthToken.model_validate(value["token"])
            expires_at = _expiry(value.get("expires_at"))
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError included
            why = f"it is not an OAuth token: {_without_values(exc)}"
            await self._set_aside(TOKENS_COLLECTION, value, why)
            return None
        if expires_at is not None:
            left = max(0, math.floor(expires_at - time.time()))
            token = token.model_copy(update={"expires_in": left})
        return token

    async def set_tokens(self, tokens: OAuthToken) -> None:
        """Keep ``tokens``, with the absolute time their access token expires.

        ``expires_in`` is the server's number, which the SDK takes as any JSON integer: it is
        read as this library reads its own token answers (a lifetime past the longest kept is
        cut to it; one too large to be a number, or negative, is a :class:`TokenError`).
        """
        expires_at = None
        if tokens.expires_in is not None:
            expires_at = time.time() + token_lifetime(tokens.expires_in, error=TokenError)
        token = tokens.model_dump(mode="json", exclude_none=True)
        await self._write(TOKENS_COLLECTION, {"token": token, "expires_at": expires_at})

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        """The stored client registration; None when none is stored (or its secret expired)."""
        from mcp.shared.auth import OAuthClientInformationFull

        value = await self._read(CLIENTS_COLLECTION)
        if value is None:
            return None
        try:
            return OAuthClientInformationFull.model_validate(value)
        except (TypeError, ValueError) as exc:
            why = f"it is not a client registration: {_without_values(exc)}"
            await self._set_aside(CLIENTS_COLLECTION, value, why)
            return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        """Keep ``client_info``; a client secret that expires takes the entry with it then.

        A registration whose secret has already expired is not kept (and any older one is
        forgotten), so the SDK registers again instead of presenting a dead secret.
        """
        ttl: float | None = None
        if client_info.client_secret_expires_at:  # 0: the secret never expires (RFC 7591)
            ttl = client_info.client_secret_expires_at - time.time()
            if ttl <= 0:
                await self._delete(CLIENTS_COLLECTION)
                return
        value = client_info.model_dump(mode="json", exclude_none=True)
        await self._write(CLIENTS_COLLECTION, value, ttl=ttl)

    async def clear(self) -> None:
        """Forget this server's tokens and client registration (nothing is revoked)."""
        await self._delete(TOKENS_COLLECTION)
        await self._delete(CLIENTS_COLLECTION)

    # -- the store underneath -----------------------------------------------------------------

    async def _read(self, collection: str) -> dict[str, Any] | None:
        store = self.store
        with store.failing_as("read the token store"):
            return await store.kv.get(self.resource, collection=collection)

    async def _write(
        self, collection: str, value: dict[str, Any], *, ttl: float | None = None
    ) -> None:
        store = self.store
        with store.failing_as("write the token store"):
            await store.kv.put(self.resource, value, collection=collection, ttl=ttl)

    async def _delete(self, collection: str) -> None:
        store = self.store
        with store.failing_as("remove an entry from the token store"):
            await store.kv.delete(self.resource, collection=collection)

    async def _set_aside(self, collection: str, value: dict[str, Any], why: str) -> None:
        from .store.aside import set_aside

        await set_aside(
            self.store.kv, self.resource, collection=collection, expected=value, why=why
        )

    def __repr__(self) -> str:
        shown = "TokenStore.default() (not opened yet)" if self._store is None else self._store
        return f"SDKTokenStorage({self.resource!r}, {shown})"


def _without_values(exc: Exception) -> str:
    """What is wrong with a stored value, by field, without any of its values: pydantic's own
    message quotes the input, which holds tokens and client secrets."""
    errors: Any = getattr(exc, "errors", None)
    if isinstance(exc, KeyError):  # a field of ours, named by us
        return f"{exc.args[0]}: missing"
    if not callable(errors):  # ours (a bad expiry), or a mapping that is not one
        return str(exc) if isinstance(exc, ValueError) else type(exc).__name__
    found = errors(include_input=False, include_url=False, include_context=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in found)


def _expiry(value: Any) -> float | None:
    """A stored absolute expiry: a finite number of seconds since the epoch, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expires_at: not a time (a {type(value).__name__})")
    return float(value)


if TYPE_CHECKING:

    def _is_token_storage(storage: SDKTokenStorage) -> TokenStorage:
        return storage  # mypy checks that the class satisfies the SDK's protocol
