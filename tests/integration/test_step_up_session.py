"""A step-up in the middle of a stateful MCP session keeps the session: the client_id survives.

The ``mcp`` SDK's server binds a session to the credential that opened it (client_id, issuer,
subject) and answers ``404 Session not found`` to the same session under another client_id.
Each client here opens ONE session with a handshake-era protocol (so the server keeps a
session), calls a tool with the first login's scope, then a tool that needs a second scope:
the server's 403 ``insufficient_scope``, a second login, and the retry in the same session.
One registration, one client_id, no 404, on every authorization server:

- the demo authorization server (``examples/demo_servers``): no RFC 7592, and it lets a client
  ask for more than it registered;
- the ``mcp`` SDK's own authorization server (``sdk_auth_server.py``, as FastMCP's): no RFC
  7592, and a client may ask only for the scopes it registered;
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
from .sdk_auth_server import SdkAuthServer, sdk_auth_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SESSION_CLIENTS = ("mcp1", "mcp2-legacy")


def session_with_step_up(
    client: str, url: str, tools: list[str], needed: str, mcp_v1: str, key: str, stores: Path
) -> Run:
    """One session calling ``tools``: one of them needs ``needed``, which the first login has
    not, so the server's 403, a second login, and the retry, all in the session (no 404)."""
    plan = [call("session", "main", "auto", *tools)]
    python = mcp_v1 if client == "mcp1" else sys.executable
    run = drive(python, client, url, stores, plan, key=key)["session"]
    assert len(run.texts()) == len(tools), run.explain()
    assert run.logins == 2, run.explain()
    assert needed in (run.scope or "").split(), run.explain()
    statuses = [status for _, _, status in run.sent(url)]
    assert 403 in statuses and 404 not in statuses, run.explain()
    return run


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
    tools = ["echo=before", "whoami"]
    run = session_with_step_up(
        client, demo.mcp_url, tools, PROFILE_SCOPE, mcp_v1, store_key, tmp_path
    )
    texts = run.texts()
    assert texts[0] == "before", run.explain()
    assert "demo-user" in texts[1], run.explain()
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
    tools = ["echo=before", "save_note=after", "whoami"]
    run = session_with_step_up(client, stack.url, tools, WRITE_SCOPE, mcp_v1, store_key, tmp_path)
    texts = run.texts()
    assert texts[:2] == ["before", "saved: after"], run.explain()
    registered = [s for m, p, s in run.sent(stack.issuer + "/") if m == "POST" and p == "/reg"]
    assert registered.count(201) == 1, run.explain()  # refusals for a scope aside
    # whoami, after the step-up, names the client; both logins' codes went to it
    client_id = json.loads(texts[2])["client_id"]
    registered = [e["client_id"] for e in stack.events() if e["event"] == "registration"]
    assert client_id in registered, registered
    codes = [g for g in stack.grants(client_id) if g == "authorization_code"]
    assert len(codes) == 2, stack.grants(client_id)


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkAuthServer]:
    with sdk_auth_server() as server:
        yield server


@pytest.mark.parametrize("client", SESSION_CLIENTS)
def test_step_up_in_a_session_keeps_the_client_id_on_the_mcp_sdks_server(
    client: str, sdk: SdkAuthServer, mcp_v1: str, store_key: str, tmp_path: Path
) -> None:
    registered_before = set(sdk.provider.clients)
    tools = ["echo=before", "save_note=after"]
    run = session_with_step_up(client, sdk.url, tools, WRITE_SCOPE, mcp_v1, store_key, tmp_path)
    assert run.texts() == ["before", "saved: after"], run.explain()
    [client_id] = set(sdk.provider.clients) - registered_before  # one registration
    stepped_up = [t for t in sdk.provider.access.values() if WRITE_SCOPE in t.scopes]
    assert client_id in {t.client_id for t in stepped_up}  # the wider token is that client's
