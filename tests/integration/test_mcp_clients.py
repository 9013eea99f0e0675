"""The promise, with the real clients: ``auth=OAuthClientProvider(...)`` on mcp 2.x, FastMCP,
mcp 1.x (in its own environment) and plain httpx / httpx2, sync and async, against a real MCP
server (the ``mcp`` SDK's, ``mcp_server.py``) and the real authorization server (oidc-provider).

Each client walks the same journey from clean stores, in two processes (the driver,
``mcp_client_driver.py``, which records every HTTP request; each step is a new provider, so
nothing is carried in memory from one step to the next):

process 1  ``first``: no tokens: discovery, registration, one login (automated: the
           authorization server's ``INTERACTION_MODE=auto`` and a login callable that follows
           its redirects), a tool call.
process 2  ``reuse``: ``interactive=False``: the stored token on the first request; no login, no
           discovery, no request to the authorization server at all.
           ``step_up``: a tool that needs ``mcp:write``: the server's 403 ``insufficient_scope``,
           one more login for the wider scope.
           ``second_login``: another clean store logs in; its refresh token is then revoked at
           the authorization server. Both access tokens expire (``AT_TTL``), and then:
           ``refresh``: one refresh-token request and nothing else at the authorization server.
           ``rejected``: the revoked refresh token is refused: a :class:`LoginRequiredError`
           that says what to run; ``relogin``: a provider that may log in does, once, with the
           stored client registration.

The seven journeys run side by side (threads driving processes), so the expiry wait is paid
once.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartStack
from .harness import Drive, Driver, Run, Stack, call, drive, start_stack, wait_until
from .mcp_client_driver import CLIENTS
from .mcp_server import WRITE_SCOPE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

AT_TTL = 30  # seconds; process 2 must call within AT_TTL - LEEWAY of process 1's token
LEEWAY = 2.0  # the provider's: a token this close to expiry counts as expired


@dataclass
class Journey:
    client: str
    stores: Path
    first: Drive | None = None
    second: Drive | None = None
    failure: str | None = None

    def run(self, step: str) -> Run:
        for drive_ in (self.first, self.second):
            if drive_ is not None and step in drive_.steps:
                return drive_.steps[step]
        where = self.second or self.first
        detail = self.failure or (where.error or {}).get("traceback") if where else self.failure
        pytest.fail(f"the {self.client} journey stopped before {step!r}:\n{detail}")


def walk(journey: Journey, stack: Stack, python: str, key: str) -> None:
    def start(*plan: dict[str, Any]) -> Driver:
        return Driver(
            python, journey.client, stack.url, journey.stores, plan, key=key, leeway=LEEWAY
        )

    second = start(
        {"wait_for_go": True},  # imports while the first process runs: its token is fresh
        call("reuse", "main", "none", "echo=second process", must_work=True),
        call("step_up", "main", "auto", f"save_note=needs {WRITE_SCOPE}"),
        call("second_login", "revoked", "auto", "echo=another login", must_work=True),
        {"revoke": "revoked"},
        {"wait_for_expiry": ["main", "revoked"], "longest": AT_TTL + 5},
        call("refresh", "main", "none", "echo=after expiry", must_work=True),
        call("rejected", "revoked", "none", "echo=refresh token revoked"),
        call("relogin", "revoked", "auto", "echo=logged in again", must_work=True),
    )
    try:
        journey.first = start(call("first", "main", "auto", "echo=first run")).result()
        second.go()
        journey.second = second.result()
    except BaseException:
        journey.failure = traceback.format_exc()
    finally:
        second.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    preregistered = {
        "client_id": "preregistered-native",
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    started = start_stack(
        tmp_path_factory.mktemp("clients"),
        AT_TTL=str(AT_TTL),
        EXTRA_CLIENTS=json.dumps([preregistered]),
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def journeys(
    stack: Stack, mcp_v1: str, store_key: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Journey]:
    found = {c: Journey(c, tmp_path_factory.mktemp(f"stores-{c}")) for c in CLIENTS}
    threads = [
        threading.Thread(
            target=walk,
            args=(j, stack, mcp_v1 if j.client == "mcp1" else sys.executable, store_key),
        )
        for j in found.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def as_requests(run: Run, stack: Stack) -> list[tuple[str, str, int | None]]:
    return run.sent(stack.issuer + "/")


def mcp_requests(run: Run, stack: Stack) -> list[tuple[str, str, int | None]]:
    return run.sent(stack.url)


def well_known(run: Run) -> list[str]:
    return [r["url"] for r in run.requests if "/.well-known/" in r["url"]]


@pytest.mark.parametrize("client", CLIENTS)
def test_first_run_logs_in_and_calls_a_tool(
    client: str, journeys: dict[str, Journey], stack: Stack
) -> None:
    run = journeys[client].run("first")
    assert run.texts() == ["first run"], run.explain()
    assert run.logins == 1, run.explain()
    posts = [p for m, p, _ in as_requests(run, stack) if m == "POST"]
    assert posts == ["/reg", "/token"], run.explain()
    assert mcp_requests(run, stack)[0][2] == 401, run.explain()  # no token yet: the challenge
    assert stack.prm_url in well_known(run), run.explain()


@pytest.mark.parametrize("client", CLIENTS)
def test_second_process_reuses_tokens_without_login_or_discovery(
    client: str, journeys: dict[str, Journey], stack: Stack
) -> None:
    first, run = journeys[client].run("first"), journeys[client].run("reuse")
    assert first.expires_at is not None
    sent_at = run.requests[0]["t"] if run.requests else run.finished
    if sent_at > first.expires_at - LEEWAY:
        issued = first.expires_at - AT_TTL
        second = journeys[client].second
        assert second is not None
        steps = ", ".join(f"{n} at {t - issued:+.1f}" for n, t in second.timeline)
        pytest.fail(
            f"this machine was too slow to test reuse: the second process sent its first request "
            f"{sent_at - first.expires_at + LEEWAY:.1f} s after the token counted as expired "
            f"(AT_TTL={AT_TTL}); from the token's issue: first process done at "
            f"{first.finished - issued:+.1f}, second process: {steps}, request at "
            f"{sent_at - issued:+.1f}"
        )
    assert run.texts() == ["second process"], run.explain()
    assert run.logins == 0
    assert as_requests(run, stack) == [], run.explain()
    assert well_known(run) == [], run.explain()
    assert {status for _, _, status in mcp_requests(run, stack)} <= {200, 202}, run.explain()


@pytest.mark.parametrize("client", CLIENTS)
def test_step_up_for_a_tool_that_needs_more_scope(
    client: str, journeys: dict[str, Journey], stack: Stack
) -> None:
    run = journeys[client].run("step_up")
    assert ("POST", "/mcp", 403) in mcp_requests(run, stack), run.explain()
    assert run.texts() == [f"saved: needs {WRITE_SCOPE}"], run.explain()
    assert run.logins == 1, run.explain()
    assert run.scope is not None and WRITE_SCOPE in run.scope.split()


@pytest.mark.parametrize("client", CLIENTS)
def test_silent_refresh_after_expiry(
    client: str, journeys: dict[str, Journey], stack: Stack
) -> None:
    run = journeys[client].run("refresh")
    assert run.texts() == ["after expiry"], run.explain()
    assert run.logins == 0
    assert as_requests(run, stack) == [("POST", "/token", 200)], run.explain()
    assert well_known(run) == [], run.explain()
    assert {status for _, _, status in mcp_requests(run, stack)} <= {200, 202}, run.explain()


@pytest.mark.parametrize("client", CLIENTS)
def test_revoked_refresh_token_asks_for_a_login_then_logs_in(
    client: str, journeys: dict[str, Journey], stack: Stack
) -> None:
    rejected = journeys[client].run("rejected")
    assert rejected.error is not None, rejected.explain()
    messages = [e["message"] for e in rejected.auth_errors() if e["type"] == "LoginRequiredError"]
    assert messages, rejected.explain()
    # the hint logs in to this store: its folder is not the default one, so it is named
    assert re.search(rf"mcp-client-auth login --store \S+ {re.escape(stack.url)}", messages[0])
    assert rejected.logins == 0
    assert as_requests(rejected, stack) == [("POST", "/token", 400)], rejected.explain()

    relogin = journeys[client].run("relogin")
    assert relogin.texts() == ["logged in again"], relogin.explain()
    assert relogin.logins == 1
    posts = [p for m, p, _ in as_requests(relogin, stack) if m == "POST"]
    assert posts == ["/token"], relogin.explain()  # the stored registration is reused


def test_step_up_with_a_preregistered_client(stack: Stack, store_key: str, tmp_path: Path) -> None:
    """The server's 403 insufficient_scope and the provider's step-up, where no registration
    pins the scope: one provider, two logins (mcp:tools, then mcp:tools mcp:write)."""
    plan = [call("step_up", "main", "auto", "echo=before", "save_note=after")]
    run = drive(
        sys.executable, "mcp2", stack.url, tmp_path, plan, key=store_key,
        client_id="preregistered-native",
    )["step_up"]  # fmt: skip
    assert run.texts() == ["before", "saved: after"], run.explain()
    assert run.logins == 2, run.explain()
    assert run.scope is not None and WRITE_SCOPE in run.scope.split()
    assert ("POST", "/mcp", 403) in mcp_requests(run, stack), run.explain()


def test_restarted_authorization_server_means_a_new_login(
    mcp_stack: StartStack, store_key: str, tmp_path: Path
) -> None:
    """The authorization server forgot everything (clients, grants; a new signing key): once
    the access token expires, the refresh is refused; the path back is a login, with a new
    registration."""
    stack = mcp_stack(AT_TTL="4")

    def process(*plan: dict[str, Any]) -> Drive:
        return drive(
            sys.executable, "mcp2", stack.url, tmp_path, plan, key=store_key, leeway=LEEWAY
        )

    first = process(call("first", "main", "auto", "echo=a"))["first"]
    assert first.texts() == ["a"], first.explain()
    stack.restart_auth_server()
    assert first.expires_at is not None
    wait_until(first.expires_at - LEEWAY + 0.5)
    after = process(
        call("rejected", "main", "none", "echo=b"), call("again", "main", "auto", "echo=c")
    )
    rejected, again = after["rejected"], after["again"]
    assert "LoginRequiredError" in [e["type"] for e in rejected.auth_errors()], rejected.explain()
    assert as_requests(rejected, stack) == [("POST", "/token", 401)], rejected.explain()
    assert again.texts() == ["c"], again.explain()
    assert again.logins == 1
    posts = [p for m, p, _ in as_requests(again, stack) if m == "POST"]
    assert posts == ["/reg", "/token"], again.explain()


def test_default_settings_with_a_bearer_only_mcp_server(
    stack: Stack, store_key: str, tmp_path: Path
) -> None:
    """What a user writes (no dpop argument), against the mcp SDK's server, which takes only
    Bearer tokens while its authorization server (oidc-provider) advertises DPoP: bearer tokens
    (a regression test: the provider used DPoP wherever the authorization server offered it)."""
    plan = [call("default", "main", "auto", "echo=x")]
    run = drive(sys.executable, "mcp2", stack.url, tmp_path, plan, key=store_key)["default"]
    assert run.texts() == ["x"], run.explain()
    assert run.logins == 1, run.explain()
