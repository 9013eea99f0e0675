"""Client-side OAuth for MCP servers and any OAuth-protected HTTP API."""

from __future__ import annotations

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
from .login import CallbackLogin, Login, LoginSession
from .provider import OAuthClientProvider
from .store import TokenStore
from .token_exchange import IdJagExchange
from .tokens import ClientRegistration, ServerRecord, TokenSet

__all__ = [
    "AuthorizationError",
    "CallbackLogin",
    "ClientCredentials",
    "ClientRegistration",
    "ConfigurationError",
    "DiscoveryError",
    "IdJagExchange",
    "IdentityAssertion",
    "Login",
    "LoginRequiredError",
    "LoginSession",
    "MCPAuthError",
    "OAuthClientProvider",
    "RegistrationError",
    "ServerRecord",
    "StorageError",
    "TokenError",
    "TokenSet",
    "TokenStore",
]

__version__ = "0.1.0"
