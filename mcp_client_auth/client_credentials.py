"""ClientCredentials and IdentityAssertion: providers for use where no person is present.

The same discovery, storage, DPoP and token handling as :class:`OAuthClientProvider`, with a
grant in place of the browser login: ``client_credentials`` (``client_secret_basic`` with a
secret, ``private_key_jwt`` (RFC 7523) with a private key), or the JWT bearer grant (RFC 7523)
with an assertion: a workload identity token, or an ID-JAG from the enterprise IdP
(:class:`~mcp_client_auth.IdJagExchange`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigurationError
from .flow import CLIENT_CREDENTIALS_GRANT, JWT_BEARER_GRANT
from .flow_types import AssertionSource
from .machine_grant import MachineGrant
from .provider import OAuthClientProvider
from .store.token_store import TokenStore
from .token_exchange import IdJagExchange

__all__ = ["ClientCredentials", "IdentityAssertion"]


class ClientCredentials(OAuthClientProvider):
    """``auth=`` for a service account: tokens from the client_credentials grant."""

    def __init__(
        self,
        server_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        private_key: str | bytes | None = None,
        signing_algorithm: str = "RS256",
        scopes: str | Sequence[str] | None = None,
        store: TokenStore | None = None,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
        dpop: bool | None = None,
        verify: ssl.SSLContext | str | bool = True,
        transport: Any = None,
        issuer: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        if not client_id:
            raise ConfigurationError("ClientCredentials needs a client_id")
        if client_secret is None and private_key is None:
            raise ConfigurationError(
                "ClientCredentials needs a client_secret or a private_key to authenticate"
            )
        super().__init__(
            server_url,
            scopes=scopes,
            client_id=client_id,
            client_secret=client_secret,
            store=store,
            interactive=False,
            leeway=leeway,
            clock=clock,
            dpop=dpop,
            verify=verify,
            transport=transport,
            issuer=issuer,
            allow_insecure_http=allow_insecure_http,
            grant=MachineGrant(
                CLIENT_CREDENTIALS_GRANT,
                private_key=private_key,
                signing_algorithm=signing_algorithm,
            ),
        )

    def __repr__(self) -> str:
        return f"ClientCredentials({self.server_url!r})"


class IdentityAssertion(OAuthClientProvider):
    """``auth=`` for the JWT bearer grant (RFC 7523): an identity assertion the caller supplies.

    ``assertion`` is the JWT to present, or ``assertion(audience, resource)`` (sync or async)
    returning a current one: a workload identity token (workload identity federation: the
    platform's token for this workload, issued for the authorization server), or an ID-JAG
    (enterprise-managed authorization). ``audience`` is the authorization server's issuer.
    With an :class:`~mcp_client_auth.IdJagExchange`, the ID-JAG comes from an RFC 8693 token
    exchange at the enterprise IdP before every grant. A refused assertion raises
    :class:`TokenError`: it is not retried, and no other grant is tried.
    """

    def __init__(
        self,
        server_url: str,
        *,
        assertion: str | AssertionSource | IdJagExchange,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: str | Sequence[str] | None = None,
        store: TokenStore | None = None,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
        dpop: bool | None = None,
        verify: ssl.SSLContext | str | bool = True,
        transport: Any = None,
        issuer: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        if isinstance(assertion, IdJagExchange):
            grant = MachineGrant(JWT_BEARER_GRANT, token_exchange=assertion)
        else:
            grant = MachineGrant(JWT_BEARER_GRANT, assertion=_as_source(assertion))
        super().__init__(
            server_url,
            scopes=scopes,
            client_id=client_id,
            client_secret=client_secret,
            store=store,
            interactive=False,
            leeway=leeway,
            clock=clock,
            dpop=dpop,
            verify=verify,
            transport=transport,
            issuer=issuer,
            allow_insecure_http=allow_insecure_http,
            grant=grant,
        )

    def __repr__(self) -> str:
        return f"IdentityAssertion({self.server_url!r})"


def _as_source(assertion: str | AssertionSource) -> AssertionSource:
    """A fixed assertion as a source that returns it, whatever it is asked for."""
    if not isinstance(assertion, str):
        return assertion
    fixed = assertion

    def assertion_source(_audience: str, _resource: str) -> str:
        return fixed

    return assertion_source
