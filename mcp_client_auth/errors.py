"""The error hierarchy.

Every error the library raises on purpose is an :class:`MCPAuthError`. Messages name the
problem and, where there is one, the fix. No message ever contains a token, a client secret,
an authorization code or a PKCE verifier: callers log these freely.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "ConfigurationError",
    "DiscoveryError",
    "LoginRequiredError",
    "MCPAuthError",
    "RegistrationError",
    "StorageError",
    "TokenError",
]


class MCPAuthError(Exception):
    """Base class of every error raised by mcp-client-auth."""


class DiscoveryError(MCPAuthError):
    """The protected resource or authorization server metadata is missing, invalid or hostile."""


class RegistrationError(MCPAuthError):
    """The client could not be registered (or its registration was refused)."""


class AuthorizationError(MCPAuthError):
    """The interactive authorization step failed: denied, wrong state or issuer, timeout."""

    def __init__(
        self, message: str, *, error: str | None = None, description: str | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.description = description


class TokenError(MCPAuthError):
    """The token endpoint refused a request or answered with an invalid token response."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        description: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.description = description
        self.status_code = status_code


class LoginRequiredError(AuthorizationError):
    """A new interactive login is needed, but this provider may not start one."""


class StorageError(MCPAuthError):
    """The token store could not be read or written (disk, permissions, keyring)."""


class ConfigurationError(MCPAuthError, ValueError):
    """An argument given to the library is unusable (a malformed URL, conflicting options)."""
