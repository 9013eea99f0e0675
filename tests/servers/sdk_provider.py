"""An in-memory provider of the ``mcp`` SDK's ``OAuthAuthorizationServerProvider`` protocol: what
the SDK's own authorization-server routes (``mcp.server.auth``) run over in the test servers.

It approves every authorization request at once (no user interface), keeps clients, codes and
tokens in memory, rotates refresh tokens, and records each revocation it is asked for (in
``revoked``, ``"access"`` or ``"refresh"``), so a test can check that a revocation reached it.
With ``revoke_grant``, revoking either token of a grant revokes both, and a refresh retires
the old access token too (what the interop servers promise); without it each token stands alone.
"""

from __future__ import annotations

import secrets
import time

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

CODE_LIFETIME = 300  # seconds an authorization code may wait for its exchange


class MemoryProvider:
    """Approves every request; access tokens live ``ttl`` seconds; issued for ``subject``."""

    def __init__(self, *, ttl: int, subject: str, revoke_grant: bool) -> None:
        self.ttl = ttl
        self.subject = subject
        self.revoke_grant = revoke_grant
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.pair: dict[str, str] = {}  # each token of a grant -> the other one
        self.revoked: list[str] = []  # "access" / "refresh", in the order they were revoked

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(32)
        assert client.client_id is not None
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + CODE_LIFETIME,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=self.subject,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self.issue(
            authorization_code.client_id, authorization_code.scopes, authorization_code.resource
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        return token if token is not None and token.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if not set(scopes) <= set(refresh_token.scopes):
            raise TokenError("invalid_scope", "more scope than the grant has")
        self.forget(refresh_token.token)
        return self.issue(
            refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.revoked.append("access" if isinstance(token, AccessToken) else "refresh")
        self.forget(token.token)

    def forget(self, value: str) -> None:
        """Drop a token (and, with ``revoke_grant``, the other token of its grant)."""
        other = self.pair.pop(value, None)
        for dropped in (value, other if self.revoke_grant else None):
            if dropped is not None:
                self.access.pop(dropped, None)
                self.refresh.pop(dropped, None)
                self.pair.pop(dropped, None)

    def issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time()) + self.ttl,
            resource=resource,
            subject=self.subject,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        self.pair[access], self.pair[refresh] = refresh, access
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.ttl,
            refresh_token=refresh,
            scope=" ".join(scopes),
        )
