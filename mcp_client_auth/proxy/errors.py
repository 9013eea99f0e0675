"""Why a message could not be relayed: each becomes a JSON-RPC error for the host."""

from __future__ import annotations

from ..errors import MCPAuthError
from . import jsonrpc


class RelayError(MCPAuthError):
    """The remote server could not answer a message: the JSON-RPC code and the text the host
    gets for each of its requests still waiting."""

    def __init__(self, text: str, code: int = jsonrpc.TRANSPORT_ERROR) -> None:
        super().__init__(text)
        self.code = code


class SessionLost(RelayError):
    """The server ended the session and a new one could not be started."""

    def __init__(self, text: str) -> None:
        super().__init__(text, jsonrpc.SESSION_LOST)
