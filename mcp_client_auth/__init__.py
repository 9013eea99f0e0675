"""Client-side OAuth for MCP servers and any OAuth-protected HTTP API.

The public names are imported on first use (PEP 562), so ``mcp-client-auth token`` with a
valid stored token never imports httpx or the flow: ``import mcp_client_auth.cli`` stays cheap.

Besides the client (:class:`OAuthClientProvider`, the login strategies, :class:`TokenStore`),
what a tool built on it needs to show its user what is going on is public too: where the
default store is and whether it exists (:meth:`TokenStore.default_directory`,
:meth:`TokenStore.default_exists`), how its key is protected (:class:`Protection`), whether
the system keyring works (:func:`probe_keyring`, :class:`KeyringProbe`), what a logout did
(:class:`LogoutResult`), and the canonical form of a server URL under which its tokens are
stored (:func:`canonical_resource_url`). The ``mcp-client-auth`` command uses nothing else.

For code that keeps the mcp SDK's or FastMCP's own OAuth client, the store alone:
:class:`SDKTokenStorage` (the SDK's ``TokenStorage``; ``mcp`` is imported by its first call,
not by naming it) and :attr:`TokenStore.kv` (FastMCP's ``token_storage=``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names

if TYPE_CHECKING:
    from .blocking import run_blocking
    from .client_credentials import ClientCredentials, IdentityAssertion
    from .errors import (
        AuthorizationError,
        ConfigurationError,
        DiscoveryError,
        LoginRequiredError,
        MCPAuthError,
        RegistrationError,
        StorageError,
        TokenError,
    )
    from .login import (
        BrowserLogin,
        CallbackLogin,
        DeviceLogin,
        Login,
        LoginSession,
        NoBrowserError,
        PasteLogin,
        PortInUseError,
    )
    from .logout import LogoutResult
    from .provider import OAuthClientProvider
    from .sdk_storage import SDKTokenStorage
    from .server_text import visible_text
    from .store import EncryptedKeyValue, TokenStore
    from .store.keys import KeyringProbe, Protection, probe_keyring
    from .token_exchange import IdJagExchange
    from .tokens import ClientRegistration, ServerRecord, TokenSet
    from .url_rules import secure_resource_url
    from .urls import canonical_resource_url

_WHERE = {
    "AuthorizationError": ".errors",
    "BrowserLogin": ".login",
    "CallbackLogin": ".login",
    "ClientCredentials": ".client_credentials",
    "ClientRegistration": ".tokens",
    "ConfigurationError": ".errors",
    "DeviceLogin": ".login",
    "DiscoveryError": ".errors",
    "EncryptedKeyValue": ".store",
    "IdJagExchange": ".token_exchange",
    "IdentityAssertion": ".client_credentials",
    "KeyringProbe": ".store.keys",
    "Login": ".login",
    "LoginRequiredError": ".errors",
    "LoginSession": ".login",
    "LogoutResult": ".logout",
    "MCPAuthError": ".errors",
    "NoBrowserError": ".login",
    "OAuthClientProvider": ".provider",
    "PasteLogin": ".login",
    "PortInUseError": ".login",
    "Protection": ".store.keys",
    "RegistrationError": ".errors",
    "SDKTokenStorage": ".sdk_storage",
    "ServerRecord": ".tokens",
    "StorageError": ".errors",
    "TokenError": ".errors",
    "TokenSet": ".tokens",
    "TokenStore": ".store",
    "canonical_resource_url": ".urls",
    "probe_keyring": ".store.keys",
    "run_blocking": ".blocking",
    "visible_text": ".server_text",
    "secure_resource_url": ".url_rules",
}

__all__ = [
    "AuthorizationError",
    "BrowserLogin",
    "CallbackLogin",
    "ClientCredentials",
    "ClientRegistration",
    "ConfigurationError",
    "DeviceLogin",
    "DiscoveryError",
    "EncryptedKeyValue",
    "IdJagExchange",
    "IdentityAssertion",
    "KeyringProbe",
    "Login",
    "LoginRequiredError",
    "LoginSession",
    "LogoutResult",
    "MCPAuthError",
    "NoBrowserError",
    "OAuthClientProvider",
    "PasteLogin",
    "PortInUseError",
    "Protection",
    "RegistrationError",
    "SDKTokenStorage",
    "ServerRecord",
    "StorageError",
    "TokenError",
    "TokenSet",
    "TokenStore",
    "canonical_resource_url",
    "probe_keyring",
    "run_blocking",
    "secure_resource_url",
    "visible_text",
]

__version__ = "0.1.0"


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
