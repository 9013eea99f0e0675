"""One ``Auth`` base class for httpx and httpx2, each where installed.

mcp >= 2 and FastMCP >= 4 use httpx2; most other code, and mcp 1.x, use httpx. Each library
refuses the other's ``Auth`` objects, so the provider inherits from both: the MRO is plain
(neither class has a metaclass or state), and the provider overrides every flow method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

__all__ = ["TRANSPORT_ERRORS", "AuthBase"]

httpx2: Any
try:  # pragma: no cover - depends on what is installed
    import httpx2
except ImportError:  # pragma: no cover
    httpx2 = None

if TYPE_CHECKING:
    import httpx2 as _httpx2

    class AuthBase(httpx.Auth, _httpx2.Auth):  # type: ignore[misc]
        """Both libraries' Auth, so type checkers accept ``auth=`` in either client."""

else:
    _bases = (httpx.Auth,) if httpx2 is None else (httpx.Auth, httpx2.Auth)
    AuthBase = type("AuthBase", _bases, {"__module__": __name__, "__slots__": ()})

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    (httpx.TransportError,) if httpx2 is None else (httpx.TransportError, httpx2.TransportError)
)
