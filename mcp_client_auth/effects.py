"""What the sans-IO flow asks its driver to do, and what it gets back.

The flow (``flow.py``, ``discovery.py``, ``registration.py``) is a set of generators that yield
these effects and receive their results. It never touches the network, the store, the login
or the clock itself, so every step is testable with plain values, and one flow serves the sync
and async drivers of both httpx and httpx2.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .errors import MCPAuthError
from .login.base import LoginSession
from .tokens import ServerRecord

__all__ = [
    "CompleteLogin",
    "DeleteRecord",
    "Effect",
    "GetAssertion",
    "GetSubjectToken",
    "HttpRequest",
    "HttpResponse",
    "LoadRecord",
    "SaveRecord",
    "ShowDeviceCode",
    "Sleep",
    "StartLogin",
    "Step",
]


@dataclass(frozen=True, repr=False)
class HttpRequest:
    """A request the flow needs sent (discovery, registration, token, revocation).

    ``error`` is the error class the driver raises when the request cannot be sent at all
    (connection refused, timeout), so a dead network surfaces as a typed error naming ``what``.
    """

    method: str
    url: str
    what: str
    error: type[MCPAuthError]
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None

    @classmethod
    def get_json(
        cls,
        url: str,
        *,
        what: str,
        error: type[MCPAuthError],
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        return cls("GET", url, what, error, {"Accept": "application/json", **(headers or {})})

    @classmethod
    def post_form(
        cls,
        url: str,
        form: Mapping[str, str],
        *,
        what: str,
        error: type[MCPAuthError],
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        return cls(
            "POST",
            url,
            what,
            error,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                **(headers or {}),
            },
            urlencode(form).encode("ascii"),
        )

    @classmethod
    def post_json(
        cls, url: str, document: Mapping[str, Any], *, what: str, error: type[MCPAuthError]
    ) -> HttpRequest:
        return cls(
            "POST",
            url,
            what,
            error,
            {"Content-Type": "application/json", "Accept": "application/json"},
            json.dumps(document).encode("utf-8"),
        )

    def __repr__(self) -> str:  # the body may hold a code, a verifier or a secret
        return f"HttpRequest({self.method} {self.url} for {self.what})"


@dataclass(frozen=True, repr=False)
class HttpResponse:
    """The answer to an :class:`HttpRequest`, body capped by the driver."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    challenges: tuple[str, ...] = ()  # every WWW-Authenticate value, in order
    truncated: bool = False

    def __repr__(self) -> str:
        return f"HttpResponse({self.status_code} from {self.url})"


@dataclass(frozen=True)
class LoadRecord:
    """Read this resource's record from the store (returns ``ServerRecord | None``)."""


@dataclass(frozen=True, repr=False)
class SaveRecord:
    """Write the record to the store (returns ``None``)."""

    record: ServerRecord


@dataclass(frozen=True)
class DeleteRecord:
    """Forget this resource's record entirely (returns ``None``)."""


@dataclass(frozen=True)
class StartLogin:
    """Start the login strategy (returns a ``LoginSession``, closed by the driver at the end)."""

    redirect_uri: str | None


@dataclass(frozen=True, repr=False)
class CompleteLogin:
    """Send the user through ``url``; returns the URL the browser was sent back to.

    ``check`` is the flow's check of that URL (raises AuthorizationError), which the driver
    hands to the session (:meth:`LoginSession.check_callbacks_with`) before it waits.
    """

    session: LoginSession
    url: str
    state: str
    timeout: float
    check: Callable[[str], object] | None = None


@dataclass(frozen=True)
class ShowDeviceCode:
    """Show the device-flow instructions to the user (returns ``None``)."""

    verification_uri: str
    user_code: str
    verification_uri_complete: str | None
    expires_in: float | None


@dataclass(frozen=True)
class GetAssertion:
    """Ask the caller for a JWT assertion for ``audience`` and ``resource`` (returns ``str``)."""

    audience: str
    resource: str


@dataclass(frozen=True, repr=False)
class GetSubjectToken:
    """The subject token of a token exchange: ``source`` itself, or what calling it returns
    (sync or async); returns ``str``."""

    source: str | Callable[[], str | Awaitable[str]]

    def __repr__(self) -> str:
        return "GetSubjectToken()"


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds (the device flow's polling interval)."""

    seconds: float


Effect = (
    HttpRequest
    | LoadRecord
    | SaveRecord
    | DeleteRecord
    | StartLogin
    | CompleteLogin
    | ShowDeviceCode
    | GetAssertion
    | GetSubjectToken
    | Sleep
)

# A step of the flow: yields effects, receives their results, returns T.
Step = Generator[Effect, Any, Any]
