"""Hostile WWW-Authenticate headers, and resources that never accept a token.

A malformed, huge or repeated challenge must never crash the provider nor send it somewhere
the resource did not mean: it falls back to the well-known metadata URLs (as the MCP
specification says for a 401 without ``resource_metadata``). A resource that keeps refusing
(401 after 401, 403 ``insufficient_scope`` after step-up) gets a bounded number of tries and
then a clear :class:`AuthorizationError`, never an endless loop of logins.

The parser itself has unit and property tests (tests/unit/test_metadata.py,
tests/unit/test_properties_metadata.py); here it is reached through the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mcp_client_auth import AuthorizationError, DiscoveryError, TokenStore, challenges
from mcp_client_auth.challenges import MAX_CHALLENGE_HEADER_BYTES
from mcp_client_auth.resource import MAX_AUTH_ROUNDS

from ..unit.test_metadata import LINEAR_READS, CountingText
from .drive import COMBOS, assert_clean, outcome, provider, send, stored
from .hostile import EVIL, Hostile, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[CountingText]]:
    """Every header value the provider's challenge parser scans, each counting its reads."""
    texts: list[CountingText] = []
    real = challenges.ChallengeScanner

    def counting(text: str) -> object:
        texts.append(CountingText(text))
        return real(texts[-1])

    monkeypatch.setattr(challenges, "ChallengeScanner", counting)
    yield texts


def with_challenges(*values: str) -> Hostile:
    servers = Hostile()
    servers.challenges = list(values)
    return servers


@pytest.mark.parametrize(
    "value",
    [
        'Bearer resource_metadata="https://mcp.example.com/unterminated',
        "Bearer resource_metadata=",
        'Bearer ,,, =="x"',
        "Bearer\x00resource_metadata=x",
        'Bearer realm="a\x01b"',
        "B\u00e9arer realm=x",
        "=",
        ",",
        "Bearer a=b c=d",
    ],
    ids=[
        "unterminated",
        "no-value",
        "junk-params",
        "nul",
        "control-in-quoted",
        "non-token",
        "only-equals",
        "only-comma",
        "missing-comma",
    ],
)
def test_malformed_challenge_falls_back_to_well_known(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers = with_challenges(value)
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth"):
        response = send(servers, provider(servers))
    assert response.status_code == 200
    prm = [s.url for s in servers.seen if servers.route(s) == "prm"]
    assert prm == [servers.prm_url]  # found at the well-known URL
    if value not in (",", "Bearer resource_metadata="):  # those two parse (token68, nothing)
        assert "malformed WWW-Authenticate" in caplog.text
    assert not any(c in caplog.text for c in "\x00\x01")  # quoted, never raw, in the log


@pytest.mark.parametrize("size", [17 * 1024, 1024 * 1024])
def test_huge_challenge_is_ignored_unread(
    size: int, caplog: pytest.LogCaptureFixture, scanned: list[CountingText]
) -> None:
    """Refused by its length alone: the parser never scans a value over the limit."""
    servers = with_challenges('Bearer realm="' + "a" * size + '", resource_metadata="x"')
    with caplog.at_level(logging.WARNING, logger="mcp_client_auth"):
        response = send(servers, provider(servers))
    assert all(len(text) <= MAX_CHALLENGE_HEADER_BYTES for text in scanned)
    assert response.status_code == 200
    assert "larger than" in caplog.text
    assert len(caplog.text) < 10_000  # the header is not copied into the log


def test_many_parameters_parse_in_linear_time(scanned: list[CountingText]) -> None:
    value = "Bearer " + ", ".join(f"p{i}=v" for i in range(1500))
    servers = with_challenges(value + f', resource_metadata="{Hostile().prm_url}"')
    assert send(servers, provider(servers)).status_code == 200
    [text] = [t for t in scanned if "p1499=v" in t]
    assert 0 < text.reads <= LINEAR_READS * len(text)


def test_many_header_lines() -> None:
    servers = with_challenges(*(['Basic realm="x"'] * 200), Hostile().challenge())
    assert send(servers, provider(servers)).status_code == 200


def test_first_bearer_challenge_wins_over_a_later_one() -> None:
    """Two Bearer challenges naming different metadata: the server's first one is used, and
    the other URL is never fetched."""
    servers = Hostile()
    servers.challenges = [servers.challenge(), f'Bearer resource_metadata="{EVIL}/prm"']
    assert send(servers, provider(servers)).status_code == 200
    assert servers.requests_to(EVIL) == []


def test_non_bearer_schemes_only() -> None:
    servers = with_challenges('Basic realm="mcp"', "Negotiate", 'Digest realm="x", nonce="y"')
    assert send(servers, provider(servers)).status_code == 200
    assert servers.requests_to(EVIL) == []


def test_dpop_challenge_before_bearer() -> None:
    servers = Hostile()
    servers.challenges = ['DPoP algs="ES256"', servers.challenge()]
    assert send(servers, provider(servers)).status_code == 200


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("http://mcp.example.com/.well-known/oauth-protected-resource/mcp", r"must use https"),
        ("http://10.0.0.1/prm", r"must use https"),
        ("file:///etc/passwd", r"not an absolute https URL"),
        ("https://user:pass@mcp.example.com/prm", r"user information"),
        ("//mcp.example.com/prm", r"not an absolute https URL"),
    ],
)
def test_challenge_metadata_url_must_be_https(url: str, pattern: str) -> None:
    servers = with_challenges(f'Bearer resource_metadata="{url}"')
    error = outcome(servers, provider(servers))
    assert_clean(error, DiscoveryError, rf"resource_metadata URL of the challenge.*{pattern}")
    assert servers.logins == 0 and servers.token_requests() == []
    assert [s for s in servers.seen if servers.route(s) != "resource"] == []


def test_challenge_metadata_for_another_resource_is_refused() -> None:
    servers = with_challenges(f'Bearer resource_metadata="{EVIL}/prm"')
    servers.hooks["other"] = lambda seen: Reply.json(
        {"resource": f"{EVIL}/mcp", "authorization_servers": [EVIL]}
    )
    error = outcome(servers, provider(servers))
    assert_clean(error, DiscoveryError, r"is for 'https://evil.example/mcp', not for")
    assert servers.logins == 0


# -- resources that never accept -------------------------------------------------------------


def refuse_always(servers: Hostile, status: int = 401, *values: str) -> None:
    headers = [("www-authenticate", v) for v in values]
    servers.hooks["resource"] = lambda seen: Reply.json({"error": "no"}, status, headers)


@pytest.mark.parametrize("combo", COMBOS)
def test_endless_401_is_bounded(combo: str) -> None:
    servers = Hostile()
    refuse_always(servers, 401, servers.challenge(error="invalid_token"))
    store = TokenStore.memory()
    error = outcome(servers, provider(servers, store, combo=combo), combo=combo)
    assert_clean(
        error,
        AuthorizationError,
        r"kept refusing freshly issued tokens \(HTTP 401",
        servers.secrets,
    )
    assert servers.count("resource") <= MAX_AUTH_ROUNDS + 1
    assert servers.logins <= MAX_AUTH_ROUNDS
    assert len(servers.token_requests()) <= 2 * MAX_AUTH_ROUNDS
    record = stored(store, servers)
    assert record is not None and record.tokens is not None  # what it got is kept


def test_endless_401_without_any_challenge_is_bounded() -> None:
    servers = Hostile()
    refuse_always(servers, 401)
    error = outcome(servers, provider(servers))
    assert_clean(error, AuthorizationError, r"kept refusing", servers.secrets)
    assert servers.logins <= MAX_AUTH_ROUNDS


def test_endless_401_with_a_new_metadata_url_each_time_is_bounded() -> None:
    servers = Hostile()
    counter = iter(range(1000))

    def moving(seen: object) -> Reply:
        n = next(counter)
        url = f"https://mcp.example.com/.well-known/oauth-protected-resource/mcp?n={n}"
        return Reply.json({}, 401, [("www-authenticate", f'Bearer resource_metadata="{url}"')])

    servers.hooks["resource"] = moving
    servers.hooks["unknown"] = lambda seen: servers.correct("prm", seen)
    error = outcome(servers, provider(servers))
    assert_clean(error, AuthorizationError, r"kept refusing", servers.secrets)
    assert servers.count("resource") <= MAX_AUTH_ROUNDS + 1


@pytest.mark.parametrize("combo", ["httpx-sync", "httpx2-async"])
def test_endless_403_insufficient_scope_is_bounded(combo: str) -> None:
    servers = Hostile()
    servers.required_scope = "admin"  # which the authorization server never grants
    servers.on_grant(
        "authorization_code",
        lambda seen: Reply.json(
            servers.issue(seen.form.get("client_id", ""), "read", servers.resource)
        ),
    )
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert_clean(
        error,
        AuthorizationError,
        r"kept refusing freshly issued tokens \(HTTP 403",
        servers.secrets,
    )
    assert servers.logins <= MAX_AUTH_ROUNDS
    assert servers.count("resource") <= MAX_AUTH_ROUNDS + 1


def test_403_without_insufficient_scope_is_returned_as_is() -> None:
    """A plain 403 (forbidden, not a scope problem) is the caller's answer, not a new login."""
    servers = Hostile()
    auth = provider(servers)
    assert send(servers, auth).status_code == 200
    refuse_always(servers, 403, 'Bearer error="access_denied"')
    assert send(servers, auth).status_code == 403
    assert servers.logins == 1


def test_403_insufficient_scope_on_another_resource_does_not_trigger_step_up() -> None:
    """Tokens and step-ups belong to the protected resource only: a 403 from another origin
    goes back to the caller untouched."""
    servers = Hostile()
    servers.hooks["other"] = lambda seen: Reply.json(
        {}, 403, [("www-authenticate", 'Bearer error="insufficient_scope", scope="admin"')]
    )
    auth = provider(servers)
    assert send(servers, auth).status_code == 200
    assert send(servers, auth, url=f"{EVIL}/mcp").status_code == 403
    assert servers.logins == 1
    assert "authorization" not in servers.requests_to(EVIL)[0].headers
