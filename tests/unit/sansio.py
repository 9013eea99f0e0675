"""Drive the sans-IO flow by hand, as h11 is tested: feed it answers, look at what it asks.

:class:`Steps` holds a flow generator at its current effect. A test says what it expects next
(``steps.expect(HttpRequest)``), looks at it, and answers it (``steps.send(...)``); discovery's
metadata requests can be answered from a fixed set of documents (:meth:`Steps.discover`), so
a test reads as the protocol exchange it checks.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from mcp_client_auth.effects import HttpRequest, HttpResponse, LoadRecord, SaveRecord
from mcp_client_auth.flow import AuthFlow, FlowSettings
from mcp_client_auth.login.base import LoginSession
from mcp_client_auth.metadata import Challenge, UrlRules
from mcp_client_auth.registration import ClientSettings
from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

E = TypeVar("E")

RESOURCE = "https://mcp.example/mcp"
ISSUER = "https://as.example"
TOKEN = ISSUER + "/token"
AUTHORIZE = ISSUER + "/authorize"
REGISTER = ISSUER + "/register"
DEVICE = ISSUER + "/device_authorization"
REVOKE = ISSUER + "/revoke"
RESOURCE_METADATA_URL = "https://mcp.example/.well-known/oauth-protected-resource/mcp"
SERVER_METADATA_URL = ISSUER + "/.well-known/oauth-authorization-server"
NOW = 1_000_000.0

SERVER_METADATA: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": AUTHORIZE,
    "token_endpoint": TOKEN,
    "registration_endpoint": REGISTER,
    "revocation_endpoint": REVOKE,
    "code_challenge_methods_supported": ["S256"],
}
RESOURCE_METADATA: dict[str, Any] = {"resource": RESOURCE, "authorization_servers": [ISSUER]}


class Clock:
    """A clock the test moves (a :class:`~mcp_client_auth.effects.Sleep` moves it too)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(**overrides: Any) -> FlowSettings:
    values: dict[str, Any] = {
        "server_url": RESOURCE,
        "client": ClientSettings(client_name="test"),
        "urls": UrlRules.for_resource(RESOURCE),
    }
    values.update(overrides)
    return FlowSettings(**values)


def dynamic_client(**overrides: Any) -> ClientRegistration:
    values: dict[str, Any] = {
        "client_id": "client-1",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ("http://127.0.0.1:8765/callback",),
        "issuer": ISSUER,
        "kind": "dynamic",
        "scope": "read",
    }
    values.update(overrides)
    return ClientRegistration(**values)


def stored_record(
    tokens: TokenSet | None = None,
    *,
    client: ClientRegistration | None = None,
    server_metadata: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ServerRecord:
    return ServerRecord(
        resource=RESOURCE,
        issuer=ISSUER,
        server_metadata=dict(server_metadata or SERVER_METADATA),
        resource_metadata=RESOURCE_METADATA,
        client=client or dynamic_client(),
        tokens=tokens,
        **overrides,
    )


def form(request: HttpRequest) -> dict[str, str]:
    """A form request's fields (each sent once)."""
    fields = parse_qs((request.body or b"").decode(), keep_blank_values=True)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {name: values[0] for name, values in fields.items()}


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def answer(
    request: HttpRequest,
    status: int = 200,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A JSON answer to ``request``, as the driver would hand it back."""
    return HttpResponse(
        status,
        # the drivers hand over case-insensitive headers; the flow reads them lower-case
        {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
        json.dumps(body or {}).encode(),
        request.url,
        request=request,
    )


def tokens_body(access: str = "at-new", **extra: Any) -> dict[str, Any]:
    return {"access_token": access, "token_type": "Bearer", "expires_in": 3600, **extra}


def challenge(**params: str) -> Challenge:
    return Challenge("Bearer", {"resource_metadata": RESOURCE_METADATA_URL, **params})


class Steps:
    """A flow generator held at the effect it yields; ``result`` once it returned."""

    def __init__(self, steps: Generator[Any, Any, Any]) -> None:
        self._steps = steps
        self.done = False
        self.result: Any = None
        self.effect: Any = None
        self._advance(lambda: next(steps))

    def _advance(self, step: Any) -> None:
        try:
            self.effect = step()
        except StopIteration as stop:
            self.done, self.result, self.effect = True, stop.value, None

    def expect(self, kind: type[E]) -> E:
        """The current effect, which must be a ``kind``."""
        assert not self.done, f"the flow returned {self.result!r}; expected a {kind.__name__}"
        assert isinstance(self.effect, kind), f"expected {kind.__name__}, got {self.effect!r}"
        return self.effect

    def send(self, value: Any = None) -> None:
        self._advance(lambda: self._steps.send(value))

    def throw(self, error: BaseException) -> None:
        self._advance(lambda: self._steps.throw(error))

    def request(self, method: str, url: str) -> HttpRequest:
        """The current effect, which must be a ``method`` request to ``url``."""
        request = self.expect(HttpRequest)
        assert (request.method, request.url) == (method, url), request
        return request

    def saved(self) -> ServerRecord:
        """Acknowledge a store write; the record written."""
        record = self.expect(SaveRecord).record
        self.send(None)
        return record

    def load(self, record: ServerRecord | None) -> None:
        self.expect(LoadRecord)
        self.send(record)

    def discover(
        self,
        resource_metadata: Mapping[str, Any] = RESOURCE_METADATA,
        server_metadata: Mapping[str, Any] = SERVER_METADATA,
    ) -> None:
        """Answer discovery's two metadata requests with these documents."""
        request = self.request("GET", RESOURCE_METADATA_URL)
        self.send(answer(request, 200, resource_metadata))
        request = self.request("GET", SERVER_METADATA_URL)
        self.send(answer(request, 200, server_metadata))


def flow(record: ServerRecord | None = None, clock: Clock | None = None, **kw: Any) -> AuthFlow:
    auth = AuthFlow(settings(**kw), clock or Clock())
    auth.record = record
    return auth


REDIRECT = "http://127.0.0.1:8765/callback"


class Session(LoginSession):
    """A login session the test plays itself: it answers ``CompleteLogin`` by hand."""

    def __init__(self, redirect_uri: str = REDIRECT) -> None:
        self.redirect_uri = redirect_uri
        self.offered = False

    async def complete(self, authorization_url: str, *, state: str, timeout: float) -> str:
        raise AssertionError("the test answers CompleteLogin itself")

    def offer_device_flow(self) -> None:
        self.offered = True
