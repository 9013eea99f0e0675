"""Client-side OAuth for MCP servers and any OAuth-protected HTTP API.

The public names are imported on first use (PEP 562), so ``mcp-client-auth token`` with a
valid stored token never imports httpx or the flow: ``import mcp_client_auth.cli`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .login import BrowserLogin, CallbackLogin, DeviceLogin, Login, LoginSession, PasteLogin
    from .provider import OAuthClientProvider
    from .store import TokenStore
    from .token_exchange import IdJagExchange
    from .tokens import ClientRegistration, ServerRecord, TokenSet

_WHERE = {
    "AuthorizationError": ".errors",
    "BrowserLogin": ".login",
    "CallbackLogin": ".login",
    "ClientCredentials": ".client_credentials",
    "ClientRegistration": ".tokens",
    "ConfigurationError": ".errors",
    "DeviceLogin": ".login",
    "DiscoveryError": ".errors",
    "IdJagExchange": ".token_exchange",
    "IdentityAssertion": ".client_credentials",
    "Login": ".login",
    "LoginRequiredError": ".errors",
    "LoginSession": ".login",
    "MCPAuthError": ".errors",
    "OAuthClientProvider": ".provider",
    "PasteLogin": ".login",
    "RegistrationError": ".errors",
    "ServerRecord": ".tokens",
    "StorageError": ".errors",
    "TokenError": ".errors",
    "TokenSet": ".tokens",
    "TokenStore": ".store",
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
    "IdJagExchange",
    "IdentityAssertion",
    "Login",
    "LoginRequiredError",
    "LoginSession",
    "MCPAuthError",
    "OAuthClientProvider",
    "PasteLogin",
    "RegistrationError",
    "ServerRecord",
    "StorageError",
    "TokenError",
    "TokenSet",
    "TokenStore",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
