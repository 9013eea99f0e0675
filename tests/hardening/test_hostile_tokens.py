"""Hostile or broken token endpoints: the code exchange and the refresh.

Each case answers one token request badly and asserts a :class:`TokenError` naming the
problem, no secret in it, and the store as it was: no tokens from a bad exchange (the client
registration kept), the old tokens intact after a bad refresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcp_client_auth import MCPAuthError, TokenError, TokenStore

from .drive import assert_clean, outcome, provider, send, stored
from .hostile import Hostile, Reply, Seen

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024


def ok(**changes: Any) -> Callable[[Hostile], Callable[[Seen], Reply]]:
    """A token response: the server's correct one, with ``changes`` (``None`` drops a field)."""

    def make(servers: Hostile) -> Callable[[Seen], Reply]:
        def reply(seen: Seen) -> Reply:
            good = servers.correct("token", seen)
            doc = json.loads(good.body)  # type: ignore[arg-type]
            doc.update(changes)
            return Reply.json({k: v for k, v in doc.items() if v is not None}, good.status)

        return reply

    return make


def raw(body: bytes, status: int = 200, ctype: str = "application/json") -> Any:
    return lambda servers: lambda seen: Reply.raw(body, status, ctype)


@dataclass
class Case:
    id: str
    reply: Callable[[Hostile], Callable[[Seen], Reply]]
    pattern: str
    marks: list[Any] = field(default_factory=list)
    announced_large: bool = False


DEEP = b"[" * 200_000

CASES = [
    Case("no-access-token", ok(access_token=None), r"has no access_token"),
    Case("access-token-a-number", ok(access_token=12345), r"has no access_token"),
    Case("access-token-empty", ok(access_token=""), r"has no access_token"),
    Case("access-token-with-crlf", ok(access_token="at-1\r\nX-Injected: yes"), r"access_token"),
    Case("access-token-with-nul", ok(access_token="at-1\x00"), r"access_token"),
    Case("token-type-missing", ok(token_type=None), r"token_type 'None'"),
    Case("token-type-mac", ok(token_type="mac"), r"token_type 'mac'"),
    Case("token-type-a-number", ok(token_type=7), r"token_type '7'"),
    Case("expires-in-negative", ok(expires_in=-60), r"negative expires_in"),
    Case(
        "expires-in-nan",
        raw(b'{"access_token": "a", "token_type": "Bearer", "expires_in": NaN}'),
        r"not valid JSON \(NaN",
    ),
    Case("expires-in-text", ok(expires_in="soon"), r"non-numeric expires_in"),
    Case("expires-in-boolean", ok(expires_in=True), r"non-numeric expires_in"),
    Case("expires-in-object", ok(expires_in={"s": 1}), r"non-numeric expires_in"),
    Case(
        "expires-in-huge-integer",
        raw(b'{"access_token": "a", "token_type": "Bearer", "expires_in": 1' + b"0" * 400 + b"}"),
        r"expires_in",
    ),
    Case("expires-in-huge-digit-string", ok(expires_in="9" * 400), r"expires_in"),
    Case("expires-in-superscript-digit", ok(expires_in="²"), r"expires_in"),
    Case("refresh-token-a-number", ok(refresh_token=5), r"refresh_token that is not a string"),
    Case("scope-a-list", ok(scope=["read"]), r"scope that is not a string"),
    Case(
        "body-not-json",
        raw(b"access_token=a&token_type=bearer", 200, "text/plain"),
        r"response at .* is not valid JSON",
    ),
    Case("body-not-utf8", raw(b'{"access_token": "\xff"}'), r"not UTF-8 text, so not valid JSON"),
    Case("body-empty", raw(b""), r"is not valid JSON"),
    Case("body-json-list", raw(b'["a"]'), r"must be a JSON object"),
    Case("body-json-string", raw(b'"at-1"'), r"must be a JSON object"),
    Case("body-deeply-nested", raw(DEEP), r"not valid JSON"),
    Case("body-over-1mib", raw(b" " * (MIB + 1)), r"larger than 1 MiB", announced_large=True),
    Case(
        "http-500-html",
        raw(b"<h1>down</h1>", 500, "text/html"),
        r"failed with HTTP 500.*tokens are kept; try again later",
    ),
    Case("http-400-no-body", raw(b"", 400), r"failed with HTTP 400"),
    Case("http-400-deeply-nested", raw(DEEP[:60_000], 400), r"failed with HTTP 400"),
    Case(
        "http-400-error-not-a-string",
        lambda servers: lambda seen: Reply.json({"error": ["invalid_request"]}, 400),
        r"failed with HTTP 400",
    ),
    Case(
        "http-400-control-characters",
        lambda servers: (
            lambda seen: Reply.json(
                {"error": "invalid_request\x1b[2J", "error_description": "bad\r\nINFO forged line"},
                400,
            )
        ),
        r"^[^\x00-\x1f\x7f]*$",
    ),
    Case(
        "http-400-huge-description",
        lambda servers: (
            lambda seen: Reply.json(
                {"error": "invalid_request", "error_description": "x" * 100_000}, 400
            )
        ),
        r"^.{0,1000}$",
    ),
]

COMBOS = ["httpx-sync", "httpx2-async"]


def params() -> list[Any]:
    out = []
    for case in CASES:
        for combo in COMBOS:
            marks = list(case.marks)
            out.append(pytest.param(case, combo, id=f"{case.id}[{combo}]", marks=marks))
    return out


def _untyped(error: object) -> None:
    if isinstance(error, Exception) and not isinstance(error, MCPAuthError):
        raise error


@pytest.mark.parametrize(("case", "combo"), params())
def test_bad_code_exchange_stores_nothing(case: Case, combo: str) -> None:
    servers = Hostile()
    servers.on_grant("authorization_code", case.reply(servers))
    store = TokenStore.memory()
    error = outcome(servers, provider(servers, store, combo=combo), combo=combo)
    _untyped(error)
    assert_clean(error, TokenError, case.pattern, servers.secrets)
    assert len(servers.token_requests()) == 1  # one exchange, no retry with the same code
    record = stored(store, servers)
    assert record is not None and record.tokens is None
    assert record.client is not None  # the registration is kept for the next try


def _logged_in(servers: Hostile) -> tuple[TokenStore, Any]:
    store = TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200
    before = stored(store, servers)
    assert before is not None and before.tokens is not None and before.tokens.refresh_token
    return store, before


def later() -> float:
    return time.time() + 7200  # the stored access token has expired for this provider


REFRESH_CASES = [c for c in CASES if not c.id.startswith("http-400")]


def refresh_params() -> list[Any]:
    out = []
    for case in REFRESH_CASES:
        marks = list(case.marks)
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.mark.parametrize("case", refresh_params())
def test_bad_refresh_keeps_the_stored_tokens(case: Case) -> None:
    servers = Hostile()
    store, before = _logged_in(servers)
    servers.on_grant("refresh_token", case.reply(servers))
    error = outcome(servers, provider(servers, store, clock=later))
    _untyped(error)
    assert_clean(error, TokenError, case.pattern, servers.secrets)
    assert len(servers.token_requests("refresh_token")) == 1
    assert servers.logins == 1  # no new login was started over a broken refresh
    after = stored(store, servers)
    assert after is not None and after.tokens == before.tokens and after.client == before.client


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_refresh_server_error_says_retry_and_keeps_tokens(status: int) -> None:
    servers = Hostile()
    store, before = _logged_in(servers)
    servers.on_grant(
        "refresh_token", lambda seen: Reply.json({"error": "temporarily_unavailable"}, status)
    )
    error = outcome(servers, provider(servers, store, clock=later))
    assert_clean(error, TokenError, rf"HTTP {status}.*tokens are kept; try again", servers.secrets)
    assert stored(store, servers).tokens == before.tokens


def test_refresh_without_new_refresh_token_keeps_the_old_one() -> None:
    """RFC 6749 section 6: a refresh response may omit the refresh token; the old one stays."""
    servers = Hostile()
    store, before = _logged_in(servers)
    servers.on_grant("refresh_token", ok(refresh_token=None)(servers))
    assert send(servers, provider(servers, store, clock=later)).status_code == 200
    after = stored(store, servers)
    assert after.tokens.access_token != before.tokens.access_token
    assert after.tokens.refresh_token == before.tokens.refresh_token


def test_huge_but_finite_expires_in_is_capped() -> None:
    servers = Hostile()
    servers.on_grant("authorization_code", ok(expires_in=1e300)(servers))
    auth = provider(servers)
    assert send(servers, auth).status_code == 200
    assert auth.tokens is not None and auth.tokens.expires_at is not None
    assert auth.tokens.expires_at <= time.time() + 367 * 24 * 3600


def test_infinite_expires_in_is_refused() -> None:
    """``Infinity`` is no JSON (RFC 8259 6): the answer is refused, not read as "forever"."""
    servers = Hostile()
    servers.on_grant("authorization_code", ok(expires_in=float("inf"))(servers))
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"not valid JSON \(Infinity", servers.secrets)


def test_bearer_in_any_case_is_accepted_and_sent_as_bearer() -> None:
    servers = Hostile()
    servers.on_grant("authorization_code", ok(token_type="bEaReR")(servers))
    auth = provider(servers)
    assert send(servers, auth).status_code == 200
    assert servers.seen[-1].headers["authorization"].startswith("Bearer ")


def test_code_is_never_sent_twice() -> None:
    """A token endpoint that fails after using the code: no second exchange with it."""
    servers = Hostile()
    servers.on_grant("authorization_code", lambda seen: Reply.raw(b"", 502))
    error = outcome(servers, provider(servers))
    assert_clean(error, TokenError, r"HTTP 502", servers.secrets)
    codes = [s.form["code"] for s in servers.token_requests("authorization_code")]
    assert len(codes) == len(set(codes)) == 1


# -- the device authorization grant (RFC 8628): a hostile device authorization response --------


def device_servers(
    answer: dict[str, Any] | bytes, token_error: str = "authorization_pending"
) -> Hostile:
    servers = Hostile()
    device = "https://auth.example.com/device_authorization"
    servers.asm_extra["device_authorization_endpoint"] = device

    def device_answer(seen: Seen) -> Reply | None:
        if seen.url != device:
            return None
        if isinstance(answer, bytes):
            return Reply.raw(answer)
        return Reply.json(answer)

    servers.hooks["other"] = device_answer
    servers.hooks["unknown"] = device_answer
    servers.on_grant(
        "urn:ietf:params:oauth:grant-type:device_code",
        lambda seen: Reply.json({"error": token_error}, 400),
    )
    return servers


# How long a device login may still be running before the test calls it stuck: far beyond
# every login timeout below (the polls would go on for the device code's 600 s, or an
# interval's hour, without one), and far beyond what a busy CI machine adds to a mocked flow.
DEADLINE = 30.0


def device_login(servers: Hostile, login_timeout: float, deadline: float) -> object:
    """Run a device login through the provider's own client; the error, or TimeoutError when
    it is still running after ``deadline`` seconds (it is cancelled then)."""
    import asyncio
    import io

    from mcp_client_auth.login.device import DeviceLogin

    auth = provider(servers, login=DeviceLogin(output=io.StringIO()), timeout=login_timeout)

    async def run() -> object:
        try:
            return await asyncio.wait_for(auth.aget_token(), deadline)
        except asyncio.TimeoutError:
            return TimeoutError(f"still running after {deadline} s")
        except Exception as exc:
            return exc

    return asyncio.run(run())


GOOD_DEVICE = {
    "device_code": "dc-1",
    "user_code": "WDJB-MJHT",
    "verification_uri": "https://auth.example.com/device",
    "expires_in": 600,
}


@pytest.fixture
def mocked(httpx_mock: Any) -> Callable[[Hostile], Hostile]:
    def use(servers: Hostile) -> Hostile:
        httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)
        return servers

    return use


def test_device_login_that_is_never_approved_ends_at_the_timeout(
    mocked: Callable[[Hostile], Hostile],
) -> None:
    servers = mocked(device_servers({**GOOD_DEVICE, "interval": 0.05}))
    error = device_login(servers, login_timeout=1.0, deadline=DEADLINE)
    assert_clean(error, MCPAuthError, r"no approval within 1 s", servers.secrets)


@pytest.mark.parametrize(
    ("answer", "pattern"),
    [
        (b"<html>", r"device authorization response .* not valid JSON"),
        ({"device_code": "dc"}, r"incomplete"),
        ({**GOOD_DEVICE, "user_code": 5}, r"incomplete"),
        ({**GOOD_DEVICE, "verification_uri": ["x"]}, r"incomplete"),
    ],
)
def test_incomplete_device_answer(
    mocked: Callable[[Hostile], Hostile], answer: Any, pattern: str
) -> None:
    servers = mocked(device_servers(answer))
    error = device_login(servers, login_timeout=2.0, deadline=DEADLINE)
    assert_clean(error, MCPAuthError, pattern, servers.secrets)


@pytest.mark.parametrize(
    ("interval", "token_error"), [(3600, "authorization_pending"), (0.05, "slow_down")]
)
def test_device_polling_never_outlives_the_login_timeout(
    mocked: Callable[[Hostile], Hostile], interval: float, token_error: str
) -> None:
    servers = mocked(device_servers({**GOOD_DEVICE, "interval": interval}, token_error))
    error = device_login(servers, login_timeout=0.5, deadline=DEADLINE)
    assert not isinstance(error, TimeoutError), error
    assert_clean(error, MCPAuthError, r"expired|did not finish", servers.secrets)


def test_device_answer_with_huge_numbers(mocked: Callable[[Hostile], Hostile]) -> None:
    body = json.dumps({**GOOD_DEVICE, "expires_in": 10**400, "interval": 10**400}).encode()
    servers = mocked(device_servers(body))
    error = device_login(servers, login_timeout=1.0, deadline=DEADLINE)
    if isinstance(error, Exception) and not isinstance(error, MCPAuthError):
        raise error
    assert_clean(error, MCPAuthError, r"interval|expires_in", servers.secrets)
