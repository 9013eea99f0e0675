"""Where the client may send anything: https off loopback, and loopback only for a loopback
resource.

* A plain-http resource off loopback is refused when the provider is made, before any
  request, naming the URL and the opt-in (``allow_insecure_http=True``,
  ``MCP_CLIENT_AUTH_INSECURE_HTTP=1``, ``--allow-http``); loopback stays allowed.
* A URL a remote resource's metadata names (the metadata URL of a challenge, an authorization
  server, any of its endpoints) that reaches this machine is refused in every spelling, so a
  remote server cannot make the client probe local services.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mcp_client_auth import (
    ClientCredentials,
    ConfigurationError,
    DiscoveryError,
    IdentityAssertion,
    IdJagExchange,
    OAuthClientProvider,
    TokenStore,
)
from mcp_client_auth._portal import run_sync
from mcp_client_auth.metadata import INSECURE_HTTP_ENV, UrlRules, reaches_this_machine

from .drive import COMBOS, outcome, provider, send
from .hostile import Hostile, Reply

REMOTE_HTTP = "http://mcp.example.com/mcp"

MAKERS: dict[str, Any] = {
    "provider": lambda url, **kw: OAuthClientProvider(url, store=TokenStore.memory(), **kw),
    "client-credentials": lambda url, **kw: ClientCredentials(
        url, client_id="svc", client_secret="s3cret", store=TokenStore.memory(), **kw
    ),
    "identity-assertion": lambda url, **kw: IdentityAssertion(
        url, assertion="jwt", store=TokenStore.memory(), **kw
    ),
}


@pytest.fixture(autouse=True)
def no_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INSECURE_HTTP_ENV, raising=False)


# -- the resource itself -------------------------------------------------------------------


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize(
    "url", [REMOTE_HTTP, "HTTP://MCP.EXAMPLE.COM/mcp", "http://10.0.0.1:8000/mcp"]
)
def test_plain_http_off_loopback_is_refused_when_made(kind: str, url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        MAKERS[kind](url)
    message = str(info.value)
    assert url.lower().split("/mcp")[0] in message.lower()  # names the URL
    assert "allow_insecure_http=True" in message and INSECURE_HTTP_ENV in message
    assert "--allow-http" in message and "https" in message


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/mcp", "http://localhost:8000/mcp", "http://[::1]:8000/mcp"],
)
def test_plain_http_on_loopback_stays_allowed(kind: str, url: str) -> None:
    assert MAKERS[kind](url).server_url == url


@pytest.mark.parametrize("kind", MAKERS)
def test_the_keyword_allows_plain_http(kind: str) -> None:
    assert MAKERS[kind](REMOTE_HTTP, allow_insecure_http=True).server_url == REMOTE_HTTP


@pytest.mark.parametrize(
    ("value", "allowed"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_the_environment_variable_allows_plain_http(
    monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool
) -> None:
    monkeypatch.setenv(INSECURE_HTTP_ENV, value)
    if allowed:
        assert MAKERS["provider"](REMOTE_HTTP).server_url == REMOTE_HTTP
    else:
        with pytest.raises(ConfigurationError):
            MAKERS["provider"](REMOTE_HTTP)


@pytest.mark.parametrize("combo", COMBOS)
def test_with_the_opt_in_a_plain_http_server_works(combo: str) -> None:
    """The development case the opt-in is for: resource and authorization server on http."""
    servers = Hostile(resource=REMOTE_HTTP, issuer="http://auth.example.com")
    auth = provider(servers, allow_insecure_http=True, combo=combo)
    assert send(servers, auth, combo=combo).status_code == 200


def test_the_identity_providers_endpoint_follows_the_same_rule() -> None:
    with pytest.raises(ConfigurationError, match=INSECURE_HTTP_ENV):
        IdJagExchange("http://idp.example.com/token", id_token="t", client_id="c")
    IdJagExchange("http://127.0.0.1:9/token", id_token="t", client_id="c")
    IdJagExchange("http://idp.example.com/token", id_token="t", client_id="c", **_opt_in())


def _opt_in() -> dict[str, Any]:
    return {"allow_insecure_http": True}


# -- loopback URLs from a remote server ------------------------------------------------------

# every spelling of this machine a hostile server might try
THIS_MACHINE = [
    "https://127.0.0.1:6379",
    "https://127.9.9.9",
    "https://localhost:8080",
    "https://LOCALHOST:8080",
    "HTTPS://LocalHost",
    "https://localhost.:8080",
    "https://admin.localhost",
    "https://[::1]:8080",
    "https://[0:0:0:0:0:0:0:1]",
    "https://[::ffff:127.0.0.1]:8080",
    "https://[::ffff:7f00:1]",
    "https://[::127.0.0.1]",
    "https://0.0.0.0:8080",
    "https://[::]:8080",
    "http://127.0.0.1:8080",
    "http://localhost:8080",
]
# numeric shorthands that the system resolver turns into 127.0.0.1: not a URL at all here
SHORTHANDS = ["https://127.1", "https://2130706433", "https://0x7f.0.0.1", "https://0177.0.0.1"]

ENDPOINTS = [
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "jwks_uri",
]


def _nothing_local_reached(servers: Hostile) -> None:
    for seen in servers.seen:
        host = seen.url.split("/")[2].rsplit(":", 1)[0] if "]" not in seen.url else "[::]"
        assert not reaches_this_machine(host), seen.url


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("field", ENDPOINTS)
def test_a_remote_servers_endpoint_on_this_machine_is_refused(combo: str, field: str) -> None:
    servers = Hostile(asm_extra={field: "https://127.0.0.1:6379/x?probe=1"})
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, DiscoveryError), error
    assert field in str(error) and "points at this machine" in str(error)
    assert servers.count("token") == 0
    _nothing_local_reached(servers)


@pytest.mark.parametrize("where", [*THIS_MACHINE, *SHORTHANDS])
def test_every_spelling_of_this_machine_is_refused(where: str) -> None:
    servers = Hostile(asm_extra={"token_endpoint": f"{where}/token"})
    error = outcome(servers, provider(servers, combo="httpx2-async"), combo="httpx2-async")
    assert isinstance(error, DiscoveryError), error
    assert "token_endpoint" in str(error)
    assert servers.count("token") == 0
    _nothing_local_reached(servers)


@pytest.mark.parametrize("combo", COMBOS)
def test_a_remote_resource_may_not_name_an_authorization_server_on_this_machine(
    combo: str,
) -> None:
    servers = Hostile(prm_extra={"authorization_servers": ["https://localhost:9000"]})
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, DiscoveryError) and "points at this machine" in str(error), error
    _nothing_local_reached(servers)


@pytest.mark.parametrize("combo", COMBOS)
def test_a_challenge_may_not_send_discovery_to_this_machine(combo: str) -> None:
    servers = Hostile(
        challenges=['Bearer resource_metadata="https://127.0.0.1:2375/containers/json"']
    )
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, DiscoveryError), error
    assert "resource_metadata" in str(error) and "points at this machine" in str(error)
    _nothing_local_reached(servers)


def test_a_stored_record_from_before_cannot_send_the_refresh_to_this_machine() -> None:
    """Metadata stored before the rule (or by another version) is checked again at use."""
    servers = Hostile(reported_ttl=0)
    store = TokenStore.memory()
    assert send(servers, provider(servers, store)).status_code == 200
    record = run_sync(store.get(servers.resource))
    assert record is not None and record.server_metadata is not None
    moved = {**record.server_metadata, "token_endpoint": "https://127.0.0.1:6379/token"}
    run_sync(store.put(replace(record, server_metadata=moved)))
    servers.seen.clear()
    error = outcome(servers, provider(servers, store, interactive=False))
    assert isinstance(error, DiscoveryError), error
    assert "the token endpoint points at this machine" in str(error)
    assert servers.count("token") == 0
    _nothing_local_reached(servers)


@pytest.mark.parametrize("combo", COMBOS)
def test_a_loopback_resource_keeps_its_loopback_servers(combo: str) -> None:
    """The control: everything on this machine (the real-server tests and the demo rely on it)."""
    servers = Hostile(resource="http://127.0.0.1:8000/mcp", issuer="http://localhost:9000")
    assert send(servers, provider(servers, combo=combo), combo=combo).status_code == 200
    assert servers.count("token") == 1


def test_a_redirect_from_https_to_http_on_one_host_is_not_followed() -> None:
    """Origins differ by scheme: a metadata answer redirected to http is refused unsent."""
    servers = Hostile()
    servers.hooks["prm"] = lambda seen: (
        Reply(307, b"", [("location", seen.url.replace("https:", "http:"))])
        if seen.url.startswith("https:")
        else None
    )
    error = outcome(servers, provider(servers))
    assert isinstance(error, DiscoveryError), error
    assert not [s for s in servers.seen if s.url.startswith("http:")]


def test_url_rules_directly() -> None:
    remote = UrlRules.for_resource("https://mcp.example.com/mcp")
    local = UrlRules.for_resource("http://127.0.0.1:8000/mcp")
    assert not remote.loopback_allowed and local.loopback_allowed
    with pytest.raises(DiscoveryError, match="points at this machine"):
        remote.check("https://[::1]/token", what="the token endpoint")
    assert local.check("https://[::1]/token", what="x") == "https://[::1]/token"
    with pytest.raises(DiscoveryError, match="must use https"):
        local.check("http://auth.example.com/token", what="the token endpoint")
    with pytest.raises(DiscoveryError, match="user information"):
        remote.check("https://127.0.0.1@auth.example.com/token", what="x")
    for where in SHORTHANDS:
        with pytest.raises(DiscoveryError, match="IPv4 address written in full"):
            local.check(where, what="x")


@pytest.mark.parametrize("combo", COMBOS)
def test_a_metadata_redirect_to_this_machine_is_not_followed(combo: str) -> None:
    servers = Hostile()
    servers.hooks["prm"] = lambda seen: Reply(307, b"", [("location", "https://127.0.0.1:6379/")])
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, DiscoveryError), error
    _nothing_local_reached(servers)


@pytest.mark.parametrize(
    "where",
    [
        "https://ｌｏｃａｌｈｏｓｔ",  # full-width: IDNA maps it to localhost
        "https://127。0。0。1",  # ideographic full stops: IDNA label separators
        "https://[::ffff:0:0]",
        "https://[::0.0.0.1]",
        "https://127.0.0.1.",
        "https://127.000.000.001",
        "https://auth.example.com@127.0.0.1",
    ],
)
def test_more_spellings_of_this_machine_are_refused(where: str) -> None:
    with pytest.raises(DiscoveryError):
        UrlRules().check(f"{where}/token", what="the token endpoint")
