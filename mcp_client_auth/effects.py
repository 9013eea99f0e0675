"""What the sans-IO flow asks its driver to do, and what it gets back.

The flow (``flow.py``, ``discovery.py``, ``registration.py``) is a set of generators that yield
these effects and receive their results. It never touches the network, the store, the login
or the clock itself, so every step is testable with plain values, and one flow serves the sync
and async drivers of both httpx and httpx2.

The drivers' own steps (``resource.py``) yield the refresh lock as effects too
(:class:`AcquireLock`, :class:`TryLock`, :class:`ReleaseLock`), so one performer per kind of
driver does every piece of I/O and the generators hold no resources of their own.

The effects are immutable values (equal when their type and fields are), :class:`~.values.Value`
classes rather than frozen dataclasses: a reconnecting process imports this module, and
dataclasses generate their methods with ``exec`` at import, a cost such a process would pay for
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .errors import MCPAuthError
from .tokens import ServerRecord
from .values import Value, set_field

if TYPE_CHECKING:  # the login package is imported only by a process that logs in
    from .login.base import LoginSession

__all__ = [
    "AcquireLock",
    "CompleteLogin",
    "DeleteRecord",
    "Effect",
    "GetSubjectToken",
    "HttpRequest",
    "HttpResponse",
    "LoadRecord",
    "ReleaseLock",
    "SaveRecord",
    "ShowDeviceCode",
    "Sleep",
    "StartLogin",
    "Step",
    "TryLock",
]


class HttpRequest(Value):
    """A request the flow needs sent (discovery, registration, token, revocation).

    ``error`` is the error class the driver raises when the request cannot be sent at all
    (connection refused, timeout), so a dead network surfaces as a typed error naming ``what``.
    """

    __slots__ = ("body", "error", "headers", "method", "timeout", "url", "what")
    method: str
    url: str
    what: str
    error: type[MCPAuthError]
    headers: Mapping[str, str]
    body: bytes | None
    timeout: float | None  # the longest it may take, when less than the driver's own deadline

    def __init__(
        self,
        method: str,
        url: str,
        what: str,
        error: type[MCPAuthError],
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        set_field(self, "method", method)
        set_field(self, "url", url)
        set_field(self, "what", what)
        set_field(self, "error", error)
        set_field(self, "headers", {} if headers is None else headers)
        set_field(self, "body", body)
        set_field(self, "timeout", timeout)

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
        timeout: float | None = None,
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
            timeout,
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


class HttpResponse(Value):
    """The answer to an :class:`HttpRequest`, body capped by the driver.

    ``request`` is the request it answers, set by the driver: what it sent (a code, a secret,
    an ID token) is cut out of any text of this answer that reaches a message
    (:func:`~mcp_client_auth.untrusted.read_error`).
    """

    __slots__ = ("body", "challenges", "headers", "request", "status_code", "truncated", "url")
    _hidden = frozenset({"request"})
    status_code: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    challenges: tuple[str, ...]  # every WWW-Authenticate value, in order
    truncated: bool
    request: HttpRequest | None

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        url: str,
        challenges: tuple[str, ...] = (),
        truncated: bool = False,
        request: HttpRequest | None = None,
    ) -> None:
        set_field(self, "status_code", status_code)
        set_field(self, "headers", headers)
        set_field(self, "body", body)
        set_field(self, "url", url)
        set_field(self, "challenges", challenges)
        set_field(self, "truncated", truncated)
        set_field(self, "request", request)

    def __repr__(self) -> str:
        return f"HttpResponse({self.status_code} from {self.url})"


class LoadRecord(Value):
    """Read this resource's record from the store (returns ``ServerRecord | None``)."""

    __slots__ = ()


class SaveRecord(Value):
    """Write the record to the store (returns ``None``)."""

    __slots__ = ("record",)
    _hidden = frozenset({"record"})  # its tokens
    record: ServerRecord

    def __init__(self, record: ServerRecord) -> None:
        set_field(self, "record", record)


class DeleteRecord(Value):
    """Forget this resource's record entirely (returns ``None``)."""

    __slots__ = ()


class StartLogin(Value):
    """Start the login strategy (returns a ``LoginSession``, closed by the driver at the end)."""

    __slots__ = ("redirect_uri",)
    redirect_uri: str | None

    def __init__(self, redirect_uri: str | None) -> None:
        set_field(self, "redirect_uri", redirect_uri)


class CompleteLogin(Value):
    """Send the user through ``url``; returns the URL the browser was sent back to.

    ``check`` is the flow's check of that URL (raises AuthorizationError), which the driver
    hands to the session (:meth:`LoginSession.check_callbacks_with`) before it waits.
    """

    __slots__ = ("check", "session", "state", "timeout", "url")
    # the state guards the callback; ``check`` carries it too, and the session its listener
    _hidden = frozenset({"check", "session", "state", "url"})
    session: LoginSession
    url: str
    state: str
    timeout: float
    check: Callable[[str], object] | None

    def __init__(
        self,
        session: LoginSession,
        url: str,
        state: str,
        timeout: float,
        check: Callable[[str], object] | None = None,
    ) -> None:
        set_field(self, "session", session)
        set_field(self, "url", url)
        set_field(self, "state", state)
        set_field(self, "timeout", timeout)
        set_field(self, "check", check)


class ShowDeviceCode(Value):
    """Show the device-flow instructions to the user (returns ``None``)."""

    __slots__ = ("expires_in", "user_code", "verification_uri", "verification_uri_complete")
    verification_uri: str
    user_code: str
    verification_uri_complete: str | None
    expires_in: float | None

    def __init__(
        self,
        verification_uri: str,
        user_code: str,
        verification_uri_complete: str | None,
        expires_in: float | None,
    ) -> None:
        set_field(self, "verification_uri", verification_uri)
        set_field(self, "user_code", user_code)
        set_field(self, "verification_uri_complete", verification_uri_complete)
        set_field(self, "expires_in", expires_in)


class GetSubjectToken(Value):
    """The subject token of a token exchange: ``source`` itself, or what calling it returns
    (sync or async); returns ``str``."""

    __slots__ = ("source",)
    _hidden = frozenset({"source"})
    source: str | Callable[[], str | Awaitable[str]]

    def __init__(self, source: str | Callable[[], str | Awaitable[str]]) -> None:
        set_field(self, "source", source)


class Sleep(Value):
    """Wait this many seconds (the device flow's polling interval)."""

    __slots__ = ("seconds",)
    seconds: float

    def __init__(self, seconds: float) -> None:
        set_field(self, "seconds", seconds)


class AcquireLock(Value):
    """Take the refresh lock of this resource, waiting as long as the store's lock allows:
    first the in-process lock, then the store's cross-process one (returns ``None``)."""

    __slots__ = ()


class TryLock(Value):
    """One try at the refresh lock (returns ``bool``: held).

    The first try of a run takes the in-process lock and tries the store's once; each later
    one first waits as long as the store's lock says between tries. A run that stops trying
    yields :class:`ReleaseLock`, which also ends the wait.
    """

    __slots__ = ()


class ReleaseLock(Value):
    """Close the login sessions this run opened, then let go of the refresh lock, held or
    waited for (returns ``None``; nothing happens when neither)."""

    __slots__ = ()


Effect = (
    HttpRequest
    | LoadRecord
    | SaveRecord
    | DeleteRecord
    | StartLogin
    | CompleteLogin
    | ShowDeviceCode
    | GetSubjectToken
    | Sleep
    | AcquireLock
    | TryLock
    | ReleaseLock
)

# A step of the flow: yields effects, receives their results, returns T.
Step = Generator[Effect, Any, Any]
