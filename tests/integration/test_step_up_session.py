"""A step-up in the middle of a stateful MCP session keeps the session: the client_id survives.

The ``mcp`` SDK's server binds a session to the credential that opened it (client_id, issuer,
subject) and answers ``404 Session not found`` to the same session under another client_id.
Each client here opens ONE session with a handshake-era protocol (so the server keeps a
session), calls a tool with the first login's scope, then a tool that needs a second scope:
the server's 403 ``insufficient_scope``, a second login, and the retry in the same session.
One registration, one client_id, no 404, on every authorization server:

- the demo authorization server (``examples/demo_servers``): no RFC 7592, and it lets a client
  ask for more than it registered;
- the real one (oidc-provider, ``tests/realas``), with RFC 7592 registration management and
  without it (``REGISTRATION_MANAGEMENT=0``, oidc-provider's own default), where a client may ask
  only for the scopes it registered; and with oidc-provider's own scope list, where it
  registers no client for a resource's scopes.

Clients: mcp 1.x ``ClientSession`` (in its own environment), mcp 2.x ``Client`` in legacy mode,
and a plain sync httpx client speaking protocol 2025-06-18 (the first-hour report's set-up).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.demo_servers import PROFILE_SCOPE, DemoServers, start_demo_servers

from .harness import Run, Stack, call, drive, start_stack
from .mcp_server import WRITE_SCOPE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SESSION_CLIENTS = ("mcp1", "mcp2-legacy")


def python_for(client: str, mcp_v1: str) -> str:
    return mcp_v1 if client == "mcp1" else sys.executable


def mcp_statuses(run: Run, url: str) -> list[int | None]:
    return [status for _, _, status in run.sent(url)]


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServers]:
    servers = start_demo_servers()
    yield servers
    servers.stop()


@pytest.mark.parametrize("client", (*SESSION_CLIENTS, "httpx-sync"))
def test_step_up_in_a_session_keeps_the_client_id_on_the_demo_server(
    client: str, demo: DemoServers, mcp_v1: str, store_key: str, tmp_path: Path
) -> None:
    registered_before = set(demo.authorization_server.clients)
    plan = [call("session", "main", "auto", "echo=before", "whoami")]
    python = python_for(client, mcp_v1)
    run = drive(python, client, demo.mcp_url, tmp_path, plan, key=store_key)["session"]
    texts = run.texts()
    assert texts[0] == "before", run.explain()
    assert "demo-user" in texts[1], run.explain()
    assert run.logins == 2, run.explain()
    assert run.scope is not None and PROFILE_SCOPE in run.scope.split(), run.explain()
    statuses = mcp_statuses(run, demo.mcp_url)
    assert 403 in statuses and 404 not in statuses, run.explain()
    registrations = [p for m, p, _ in run.sent(demo.issuer + "/") if p == "/register"]
    assert registrations == ["/register"], run.explain()
    new_clients = set(demo.authorization_server.clients) - registered_before
    assert len(new_clients) == 1, run.explain()


REALAS_SETTINGS = {
    "with RFC 7592": {"REGISTRATION_MANAGEMENT": "1"},
    "without RFC 7592": {"REGISTRATION_MANAGEMENT": "0"},
    # oidc-provider's own scope list (openid, offline_access): it refuses to register a client
    # for a resource's scopes, so the client is registered with no scope
    "its own scopes only": {"REGISTRATION_MANAGEMENT": "0", "STATIC_RS_SCOPES": "0"},
}


@pytest.fixture(scope="module", params=list(REALAS_SETTINGS))
def realas_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    knobs = REALAS_SETTINGS[request.param]
    started = start_stack(tmp_path_factory.mktemp("step-up"), AT_TTL="300", **knobs)
    yield started
    started.stop()


@pytest.mark.parametrize("client", SESSION_CLIENTS)
def test_step_up_in_a_session_keeps_the_client_id_on_oidc_provider(
    client: str, realas_stack: Stack, mcp_v1: str, store_key: str, tmp_path: Path
) -> None:
    stack = realas_stack
    plan = [call("session", "main", "auto", "echo=before", "save_note=after", "whoami")]
    python = python_for(client, mcp_v1)
    run = drive(python, client, stack.url, tmp_path, plan, key=store_key)["session"]
    texts = run.texts()
    assert texts[:2] == ["before", "saved: after"], run.explain()
    assert run.logins == 2, run.explain()
    assert run.scope is not None and WRITE_SCOPE in run.scope.split(), run.explain()
    statuses = mcp_statuses(run, stack.url)
    assert 403 in statuses and 404 not in statuses, run.explain()
    registered = [s for m, p, s in run.sent(stack.issuer + "/") if m == "POST" and p == "/reg"]
    assert registered.count(201) == 1, run.explain()  # refusals for a scope aside
    # whoami, after the step-up, names the client; both logins' codes went to it
    client_id = json.loads(texts[2])["client_id"]
    registered = [e["client_id"] for e in stack.events() if e["event"] == "registration"]
    assert client_id in registered, registered
    codes = [g for g in stack.grants(client_id) if g == "authorization_code"]
    assert len(codes) == 2, stack.grants(client_id)
