"""Hostile or broken servers during discovery and registration.

Every case runs the whole flow through the provider (a request to the resource, its 401,
discovery, registration, login) against a :class:`Hostile` whose one endpoint misbehaves, and
asserts: a typed error naming the problem, no secret in it, no login started where discovery
failed, no token requested, nothing stored that the hostile answer could have produced.

The metadata parsers themselves have unit and property tests (tests/unit/test_metadata.py,
tests/unit/test_properties_metadata.py); here they are reached the way a real server reaches them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcp_client_auth import (
    DiscoveryError,
    MCPAuthError,
    RegistrationError,
    TokenStore,
)

from .drive import assert_clean, outcome, provider, send, stored
from .hostile import EVIL, ISSUER, Hostile, Reply, chunks

pytestmark = pytest.mark.timeout(30)

MIB = 1024 * 1024


@dataclass
class Case:
    id: str
    setup: Callable[[Hostile], None]
    error: type[MCPAuthError]
    pattern: str
    sync_only: bool = False  # streamed bodies: MockTransport streams them to sync clients only
    login_expected: bool = False  # registration happens after the login strategy started
    marks: list[Any] = field(default_factory=list)
    announced_large: bool = False  # a Content-Length over 1 MiB


def hook(name: str, reply: Callable[[], Reply]) -> Callable[[Hostile], None]:
    def setup(servers: Hostile) -> None:
        servers.hooks[name] = lambda seen: reply()

    return setup


def prm(**extra: Any) -> Callable[[Hostile], None]:
    def setup(servers: Hostile) -> None:
        servers.prm_extra.update(extra)

    return setup


def asm(**extra: Any) -> Callable[[Hostile], None]:
    def setup(servers: Hostile) -> None:
        servers.asm_extra.update(extra)

    return setup


def no_as_metadata(servers: Hostile) -> None:
    servers.hooks["asm"] = lambda seen: Reply.json({"error": "not_found"}, 404)
    servers.hooks["unknown"] = lambda seen: Reply.json({"error": "not_found"}, 404)


def no_registration(servers: Hostile) -> None:
    servers.dcr = False


HUGE = b'{"resource": "' + b"a" * (MIB + 10) + b'"}'
DEEP = b"[" * 200_000
DEEP_OBJECT = b'{"a":' * 100_000

CASES = [
    # -- protected resource metadata (RFC 9728) ------------------------------------------------
    Case(
        "prm-not-json",
        hook("prm", lambda: Reply.raw(b"<html>hi</html>", 200, "text/html")),
        DiscoveryError,
        r"protected resource metadata at .* is not valid JSON",
    ),
    Case(
        "prm-not-utf8",
        hook("prm", lambda: Reply.raw(b'{"resource": "\xff\xfe"}')),
        DiscoveryError,
        r"protected resource metadata .* not UTF-8",
    ),
    Case(
        "prm-json-array",
        hook("prm", lambda: Reply.json([ISSUER])),
        DiscoveryError,
        r"must be a JSON object, got an array",
    ),
    Case(
        "prm-json-null",
        hook("prm", lambda: Reply.raw(b"null")),
        DiscoveryError,
        r"must be a JSON object, got null",
    ),
    Case(
        "prm-nan",
        hook("prm", lambda: Reply.raw(b'{"resource": NaN}')),
        DiscoveryError,
        r"not valid JSON",
    ),
    Case(
        "prm-deeply-nested", hook("prm", lambda: Reply.raw(DEEP)), DiscoveryError, r"not valid JSON"
    ),
    Case(
        "prm-deeply-nested-object",
        hook("prm", lambda: Reply.raw(DEEP_OBJECT)),
        DiscoveryError,
        r"not valid JSON",
    ),
    Case(
        "prm-over-1mib",
        hook("prm", lambda: Reply.raw(HUGE)),
        DiscoveryError,
        r"protected resource metadata .* larger than 1 MiB",
        announced_large=True,
    ),
    Case(
        "prm-over-1mib-chunked",
        hook("prm", lambda: Reply(200, chunks(64 * 1024, 20, []), [("content-type", "x")])),
        DiscoveryError,
        r"larger than 1 MiB",
        sync_only=True,
    ),
    Case(
        "prm-resource-not-a-string",
        prm(resource=5),
        DiscoveryError,
        r"field 'resource' must be a non-empty string, got a number",
    ),
    Case(
        "prm-resource-missing",
        prm(resource=None),
        DiscoveryError,
        r"required field 'resource' is missing",
    ),
    Case(
        "prm-servers-not-a-list",
        prm(authorization_servers=ISSUER),
        DiscoveryError,
        r"'authorization_servers' must be an array of strings, got a string",
    ),
    Case(
        "prm-scopes-wrong-type",
        prm(scopes_supported=[1, 2]),
        DiscoveryError,
        r"'scopes_supported' must be an array of strings",
    ),
    Case(
        "prm-resource-of-another-server",
        prm(resource="https://other.example.com/mcp"),
        DiscoveryError,
        r"is for 'https://other.example.com/mcp', not for https://mcp",
    ),
    Case(
        "prm-resource-sibling-path",
        prm(resource="https://mcp.example.com/mc"),
        DiscoveryError,
        r"is for 'https://mcp.example.com/mc', not for",
    ),
    Case(
        "prm-resource-plain-http",
        prm(resource="http://mcp.example.com/mcp"),
        DiscoveryError,
        r"not for https://mcp.example.com/mcp",
    ),
    Case(
        "prm-resource-other-port",
        prm(resource="https://mcp.example.com:8443/mcp"),
        DiscoveryError,
        r"not for https://mcp.example.com/mcp",
    ),
    Case(
        "prm-no-authorization-server",
        prm(authorization_servers=[]),
        DiscoveryError,
        r"names no authorization server",
    ),
    Case(
        "prm-as-plain-http",
        prm(authorization_servers=["http://auth.example.com"]),
        DiscoveryError,
        r"authorization server .* must use https: http://auth.example.com",
    ),
    Case(
        "prm-as-with-userinfo",
        prm(authorization_servers=["https://u:p@auth.example.com"]),
        DiscoveryError,
        r"user information",
    ),
    Case(
        "prm-as-javascript-url",
        prm(authorization_servers=["javascript:alert(1)"]),
        DiscoveryError,
        r"not an absolute https URL",
    ),
    Case(
        "prm-as-with-newline",
        prm(authorization_servers=["https://auth.example.com\r\nX: y"]),
        DiscoveryError,
        r"whitespace or a control character",
    ),
    # -- authorization server metadata (RFC 8414 / OIDC) ----------------------------------------
    Case(
        "asm-issuer-of-another-server",
        asm(issuer=EVIL),
        DiscoveryError,
        r"is for issuer 'https://evil.example'.*exact match",
    ),
    Case(
        "asm-issuer-trailing-slash",
        asm(issuer=ISSUER + "/"),
        DiscoveryError,
        r"is for issuer 'https://auth.example.com/'.*exact match",
    ),
    Case(
        "asm-issuer-missing",
        asm(issuer=None),
        DiscoveryError,
        r"required field 'issuer' is missing",
    ),
    Case(
        "asm-not-json",
        hook("asm", lambda: Reply.raw(b"{'issuer': 'x'}")),
        DiscoveryError,
        r"authorization server metadata at .* not valid JSON",
    ),
    Case(
        "asm-over-1mib",
        hook("asm", lambda: Reply.raw(HUGE)),
        DiscoveryError,
        r"authorization server metadata .* larger than 1 MiB",
        announced_large=True,
    ),
    Case("asm-none-published", no_as_metadata, DiscoveryError, r"publishes no metadata"),
    Case(
        "asm-token-endpoint-plain-http",
        asm(token_endpoint="http://auth.example.com/token"),
        DiscoveryError,
        r"token_endpoint .* must use https",
    ),
    Case(
        "asm-token-endpoint-not-a-string",
        asm(token_endpoint=443),
        DiscoveryError,
        r"'token_endpoint' must be a non-empty string, got a number",
    ),
    Case(
        "asm-authorization-endpoint-file-url",
        asm(authorization_endpoint="file:///etc/passwd"),
        DiscoveryError,
        r"authorization_endpoint .* not an absolute https URL",
    ),
    Case(
        "asm-authorization-endpoint-javascript",
        asm(authorization_endpoint="javascript:alert(document.cookie)"),
        DiscoveryError,
        r"authorization_endpoint .* not an absolute https URL",
    ),
    Case(
        "asm-authorization-endpoint-shell-injection",
        asm(authorization_endpoint='https://auth.example.com/a" & calc.exe & "'),
        DiscoveryError,
        r"authorization_endpoint .* whitespace",
    ),
    Case(
        "asm-registration-endpoint-plain-http",
        asm(registration_endpoint="http://auth.example.com/register"),
        DiscoveryError,
        r"registration_endpoint .* must use https",
    ),
    Case(
        "asm-revocation-endpoint-plain-http",
        asm(revocation_endpoint="http://auth.example.com/revoke"),
        DiscoveryError,
        r"revocation_endpoint .* must use https",
    ),
    Case(
        "asm-pkce-plain-only",
        asm(code_challenge_methods_supported=["plain"]),
        DiscoveryError,
        r"does not advertise PKCE S256",
    ),
    Case(
        "asm-pkce-not-advertised",
        asm(code_challenge_methods_supported=None),
        DiscoveryError,
        r"does not advertise PKCE S256",
    ),
    Case(
        "asm-pkce-methods-a-string",
        asm(code_challenge_methods_supported="S256"),
        DiscoveryError,
        r"'code_challenge_methods_supported' must be an array of strings",
    ),
    Case(
        "asm-iss-flag-not-a-boolean",
        asm(authorization_response_iss_parameter_supported="yes"),
        DiscoveryError,
        r"must be a boolean, got a string",
    ),
    # -- dynamic client registration (RFC 7591) -------------------------------------------------
    Case(
        "registration-without-client-id",
        hook("register", lambda: Reply.json({"client_name": "x"}, 201)),
        RegistrationError,
        r"registration response from .* has no client_id",
        login_expected=True,
    ),
    Case(
        "registration-client-id-not-a-string",
        hook("register", lambda: Reply.json({"client_id": 12345}, 201)),
        RegistrationError,
        r"has no client_id",
        login_expected=True,
    ),
    Case(
        "registration-client-id-empty",
        hook("register", lambda: Reply.json({"client_id": ""}, 201)),
        RegistrationError,
        r"has no client_id",
        login_expected=True,
    ),
    Case(
        "registration-not-json",
        hook("register", lambda: Reply.raw(b"<h1>created</h1>", 201)),
        RegistrationError,
        r"registration response .* not valid JSON",
        login_expected=True,
    ),
    Case(
        "registration-json-array",
        hook("register", lambda: Reply.json(["client"], 201)),
        RegistrationError,
        r"must be a JSON object",
        login_expected=True,
    ),
    Case(
        "registration-over-1mib",
        hook("register", lambda: Reply.raw(HUGE, 201)),
        RegistrationError,
        r"client registration response .* larger than 1 MiB",
        login_expected=True,
        announced_large=True,
    ),
    Case(
        "registration-refused",
        hook(
            "register",
            lambda: Reply.json(
                {"error": "invalid_client_metadata", "error_description": "no"}, 400
            ),
        ),
        RegistrationError,
        r"refused to register this client \(HTTP 400: invalid_client_metadata",
        login_expected=True,
    ),
    Case(
        "registration-server-error",
        hook("register", lambda: Reply.raw(b"oops", 500)),
        RegistrationError,
        r"refused to register this client \(HTTP 500",
        login_expected=True,
    ),
    Case(
        "registration-not-offered",
        no_registration,
        RegistrationError,
        r"offers no dynamic client registration.*client_id=",
        login_expected=True,
    ),
    Case(
        "registration-huge-secret-expiry",
        hook(
            "register",
            lambda: Reply.raw(
                b'{"client_id": "c1", "client_secret": "s", "client_secret_expires_at": 1'
                + b"0" * 400
                + b"}",
                201,
            ),
        ),
        RegistrationError,
        r"client_secret_expires_at",
        login_expected=True,
    ),
]

COMBOS = ["httpx-sync", "httpx2-async"]


def params() -> list[Any]:
    out = []
    for case in CASES:
        for combo in COMBOS:
            if case.sync_only and not combo.endswith("-sync"):
                continue
            marks = list(case.marks)
            out.append(pytest.param(case, combo, id=f"{case.id}[{combo}]", marks=marks))
    return out


@pytest.mark.parametrize(("case", "combo"), params())
def test_hostile_server_is_a_typed_error(case: Case, combo: str) -> None:
    servers = Hostile()
    case.setup(servers)
    store = TokenStore.memory()
    error = outcome(servers, provider(servers, store, combo=combo), combo=combo)
    if isinstance(error, Exception) and not isinstance(error, MCPAuthError):
        raise error  # an untyped crash: show it as it is
    assert_clean(error, case.error, case.pattern, servers.secrets)
    assert servers.token_requests() == []  # nothing was exchanged
    assert servers.logins == 0  # the user was never sent to a hostile server's login page
    record = stored(store, servers)
    assert record is None or record.tokens is None
    if not case.login_expected:
        assert record is None or record.client is None


def test_endless_metadata_body_is_not_read_past_the_cap() -> None:
    """A body without a length that never ends: the provider stops reading near 1 MiB."""
    servers = Hostile()
    consumed: list[int] = []
    servers.hooks["prm"] = lambda seen: Reply(200, chunks(MIB, 24, consumed), [])
    error = outcome(servers, provider(servers))
    assert_clean(error, DiscoveryError, r"larger than 1 MiB")
    assert len(consumed) <= 2


# -- redirects ------------------------------------------------------------------------------------


def evil_prm(servers: Hostile) -> Reply:
    return Reply.json({"resource": servers.resource, "authorization_servers": [EVIL]})


@pytest.mark.parametrize("combo", ["httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async"])
def test_discovery_redirected_to_another_origin_is_refused(combo: str) -> None:
    """A client that follows redirects: the flow checks where the answer came from."""
    servers = Hostile()
    servers.hooks["prm"] = lambda seen: Reply(302, b"", [("location", f"{EVIL}/prm")])
    servers.hooks["other"] = lambda seen: evil_prm(servers)
    error = outcome(servers, provider(servers, combo=combo), combo=combo, follow_redirects=True)
    assert_clean(
        error, DiscoveryError, r"redirected to another origin \(https://evil.example/prm\)"
    )
    assert servers.logins == 0 and servers.token_requests() == []


def test_as_metadata_redirected_to_another_origin_is_refused() -> None:
    servers = Hostile()
    servers.hooks["asm"] = lambda seen: Reply(307, b"", [("location", f"{EVIL}/meta")])
    servers.hooks["other"] = lambda seen: Reply.json({"issuer": ISSUER})
    error = outcome(servers, provider(servers), follow_redirects=True)
    assert_clean(error, DiscoveryError, r"authorization server metadata request .* redirected")


def test_redirect_not_followed_never_reaches_the_other_origin() -> None:
    """A client that does not follow redirects: a 302 is "no metadata here", and the other
    origin is never contacted, whatever the flow concludes from the rest."""
    servers = Hostile()
    servers.hooks["prm"] = lambda seen: Reply(302, b"", [("location", f"{EVIL}/prm")])
    error = outcome(servers, provider(servers))
    assert isinstance(error, MCPAuthError)  # no metadata anywhere: a typed error
    assert servers.requests_to(EVIL) == []


def test_same_origin_redirect_is_followed() -> None:
    """The positive control: a redirect within the resource's origin is fine."""
    servers = Hostile()
    moved = servers.prm_url.replace("/.well-known/", "/moved/.well-known/")
    servers.hooks["prm"] = lambda seen: Reply(301, b"", [("location", moved)])
    servers.hooks["unknown"] = lambda seen: (
        servers.correct("prm", seen) if seen.url == moved else None
    )
    response = send(servers, provider(servers), follow_redirects=True)
    assert response.status_code == 200


def test_cross_origin_endpoints_over_https_are_accepted() -> None:
    """No specification forbids an authorization server's endpoints on another https origin
    (RFC 8414 section 2: any https URL): the flow uses them, and sends nothing over http."""
    servers = Hostile()
    servers.asm_extra["token_endpoint"] = "https://tokens.example/token"
    servers.hooks["other"] = lambda seen: servers.correct("token", seen)
    assert send(servers, provider(servers)).status_code == 200
    assert [s.url for s in servers.requests_to("https://tokens.example")] == [
        "https://tokens.example/token"
    ]


# -- nothing lost ----------------------------------------------------------------------------------


def test_step_up_against_hostile_metadata_keeps_the_tokens() -> None:
    """The server turns hostile after a good login: the step-up fails, the old tokens stay."""
    servers = Hostile()
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert send(servers, auth).status_code == 200
    before = stored(store, servers)
    assert before is not None and before.tokens is not None
    servers.required_scope = "admin"
    servers.asm_extra["issuer"] = EVIL
    error = outcome(servers, auth)
    assert_clean(error, DiscoveryError, r"exact match", servers.secrets)
    after = stored(store, servers)
    assert after is not None and after.tokens == before.tokens
    assert after.client == before.client


def test_get_token_with_oversized_metadata_is_a_typed_error(httpx_mock: Any) -> None:
    servers = Hostile()
    servers.hooks["prm"] = lambda seen: Reply.raw(HUGE)
    httpx_mock.add_callback(servers.handler, is_reusable=True, is_optional=True)
    with pytest.raises(MCPAuthError) as info:
        provider(servers).get_token()
    assert_clean(info.value, DiscoveryError, r"larger than 1 MiB")
