"""Demo servers for the quickstart and the tests: an OAuth 2.1 authorization server and an
MCP server (the ``mcp`` SDK's) that trusts it, both on 127.0.0.1.

Not part of the library: they exist so the quickstart runs with no account, no network and no
Node, and so the tests meet a strict, real server rather than mocks.
"""

from .demo_as import DEFAULT_SCOPES, SUPPORTED_SCOPES, DemoAuthorizationServer, OAuthError
from .demo_mcp import BASE_SCOPE, PROFILE_SCOPE, JWKSTokenVerifier, build_mcp_app, build_mcp_server
from .servers import DemoServers, start_demo_servers

__all__ = [
    "BASE_SCOPE",
    "DEFAULT_SCOPES",
    "PROFILE_SCOPE",
    "SUPPORTED_SCOPES",
    "DemoAuthorizationServer",
    "DemoServers",
    "JWKSTokenVerifier",
    "OAuthError",
    "build_mcp_app",
    "build_mcp_server",
    "start_demo_servers",
]
