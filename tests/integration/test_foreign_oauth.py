"""Our store under other projects' OAuth clients, against the real servers: FastMCP's ``OAuth``
with ``token_storage=TokenStore.default(...).kv``, and the mcp SDK's ``OAuthClientProvider``
(2.x, and 1.x in its own environment) with ``storage=SDKTokenStorage(url, store)``.

Two MCP servers (each with its own real authorization server) share one store. Each client
walks the same journey, in two processes (``foreign_oauth_driver.py``; a process keeps one
provider per server, as an application does):

process 1  ``login``, ``login_b``: a login for each server, a tool call.
           ``refresh``, ``refresh_b``: once each access token has expired, one refresh-token
           request and nothing else at the authorization server, no login; the rotated refresh
           token goes into the store.
process 2  ``restart``, ``restart_b`` (a new process on the same store): the stored (refreshed)
           tokens, no login, no request to either authorization server.
           ``expired_after_restart``: what these clients still miss. A token loaded from the
           store comes without the authorization server's metadata, so once it expires:
           FastMCP sends the refresh token to the MCP server's own origin (``/token``, a 404
           here), the SDK sends the expired token (a 401); both then log in again.

The three journeys run side by side (threads driving processes), so the expiry waits are
paid once.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .foreign_oauth_driver import CLIENTS
from .harness import DriverProcess, Stack, driver_env, side_by_side, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AT_TTL = 30  # seconds: process 2 must call within this of process 1's refresh
FAKE_BROWSER = Path(__file__).with_name("fake_browser.py")


@dataclass
class Step:
    name: str
    data: dict[str, Any]
    stderr: str

    @property
    def logins(self) -> int:
        return int(self.data["logins"])

    def texts(self) -> list[str]:
        assert "error" not in self.data, self.explain()
        return list(self.data["texts"])

    def sent(self, url: str) -> list[tuple[str, str, int | None]]:
        """(method, path, status) of the requests sent to ``url``'s origin."""
        want = urlsplit(url)[:2]
        return [
            (r["method"], urlsplit(r["url"]).path, r["status"])
            for r in self.data["requests"]
            if urlsplit(r["url"])[:2] == want
        ]

    def explain(self) -> str:
        lines = [f"{self.name}: logins={self.data['logins']}"]
        for r in self.data["requests"]:
            lines.append(f"  {r['method']} {r['url'][:120]} -> {r['status']}")
        if "error" in self.data:
            lines.append(f"error: {self.data['error']['traceback']}")
        return "\n".join([*lines, self.stderr[-3000:]])


@dataclass
class Journey:
    client: str
    folder: Path
    steps: dict[str, Step] = field(default_factory=dict)
    failure: str = ""

    def __getitem__(self, name: str) -> Step:
        if name not in self.steps:
            pytest.fail(f"the {self.client} journey stopped before {name!r}:\n{self.failure}")
        return self.steps[name]


class Driver(DriverProcess):
    """A process of ``foreign_oauth_driver.py`` for ``journey``'s client and store."""

    def __init__(self, journey: Journey, key: str, plan: list[dict[str, Any]], python: str):
        env = driver_env(key)
        env["BROWSER"] = f"{sys.executable} {FAKE_BROWSER} %s"
        env["FAKE_BROWSER_LOG"] = str(journey.folder / "browser.log")
        argv = [python, "-m", "tests.integration.foreign_oauth_driver", journey.client]
        argv += ["--store", str(journey.folder / "store"), "--plan", json.dumps(plan)]
        super().__init__(argv, env, journey.client)

    def result(self, journey: Journey) -> None:
        data, stderr = self.output(timeout=200)
        for name, report in data["steps"].items():
            journey.steps[name] = Step(name, report, stderr)
        if "error" in data:
            journey.failure += data["error"]["traceback"] + stderr[-3000:]


def call(name: str, url: str, text: str) -> dict[str, Any]:
    return {"call": name, "url": url, "tools": [f"echo={text}"]}


def walk(journey: Journey, a: Stack, b: Stack, python: str, key: str) -> None:
    second = Driver(
        journey,
        key,
        [
            {"wait_for_go": True},  # imports while the first process runs
            call("restart", a.url, "restart"),
            call("restart_b", b.url, "restart b"),
            {"wait_for_expiry": a.url},
            call("expired_after_restart", a.url, "expired after restart"),
        ],
        python,
    )
    try:
        first = Driver(
            journey,
            key,
            [
                call("login", a.url, "login"),
                call("login_b", b.url, "login b"),
                {"wait_for_expiry": a.url},
                call("refresh", a.url, "refresh"),
                {"wait_for_expiry": b.url},
                call("refresh_b", b.url, "refresh b"),
            ],
            python,
        )
        first.result(journey)
        second.go()
        second.result(journey)
    except BaseException:
        journey.failure += traceback.format_exc()
    finally:
        second.kill()


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stack]]:
    a = start_stack(tmp_path_factory.mktemp("foreign-a"), AT_TTL=str(AT_TTL))
    try:
        b = start_stack(tmp_path_factory.mktemp("foreign-b"), AT_TTL=str(AT_TTL))
    except BaseException:
        a.stop()
        raise
    yield {"a": a, "b": b}
    b.stop()
    a.stop()


@pytest.fixture(scope="module")
def journeys(
    stacks: dict[str, Stack],
    mcp_v1: str,
    store_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Journey]:
    found = {c: Journey(c, tmp_path_factory.mktemp(f"foreign-{c}")) for c in CLIENTS}
    side_by_side(
        *(
            functools.partial(
                walk,
                j,
                stacks["a"],
                stacks["b"],
                mcp_v1 if j.client == "sdk1" else sys.executable,
                store_key,
            )
            for j in found.values()
        )
    )
    return found


SERVERS = {"a": "", "b": "_b"}  # the suffix of each server's step names


@dataclass
class Case:
    """One client against one of the two servers: its steps there, and what they sent."""

    client: str
    server: str
    journeys: dict[str, Journey]
    stacks: dict[str, Stack]

    def step(self, name: str) -> Step:
        step = self.journeys[self.client][name + SERVERS[self.server]]
        assert step.texts() == [step.name.replace("_", " ")], step.explain()
        return step

    def auth_server_posts(self, step: Step) -> list[tuple[str, int | None]]:
        issuer = self.stacks[self.server].issuer
        return [(path, status) for method, path, status in step.sent(issuer) if method == "POST"]


@pytest.fixture(params=[(c, s) for c in CLIENTS for s in SERVERS], ids="-".join)
def case(
    request: pytest.FixtureRequest, journeys: dict[str, Journey], stacks: dict[str, Stack]
) -> Case:
    client, server = request.param
    return Case(client, server, journeys, stacks)


def test_a_login_for_each_of_two_servers_in_one_store(case: Case) -> None:
    step = case.step("login")
    assert step.logins == 1, step.explain()
    assert case.auth_server_posts(step) == [("/reg", 201), ("/token", 200)], step.explain()


def test_a_refresh_once_the_access_token_expires(case: Case) -> None:
    step = case.step("refresh")
    assert step.logins == 0, step.explain()
    assert case.auth_server_posts(step) == [("/token", 200)], step.explain()


def test_a_new_process_reuses_the_stored_tokens_of_both_servers(case: Case) -> None:
    step = case.step("restart")
    assert step.logins == 0, step.explain()
    assert step.sent(case.stacks[case.server].issuer) == [], step.explain()
    statuses = {status for _, _, status in step.sent(case.stacks[case.server].url)}
    assert statuses <= {200, 202}, step.explain()


@pytest.mark.parametrize("client", CLIENTS)
def test_what_they_still_miss_an_expired_token_after_a_restart_costs_a_login(
    client: str, journeys: dict[str, Journey], stacks: dict[str, Stack]
) -> None:
    """Pins the README's account of these clients: the authorization server's metadata is not
    stored, so a restarted process cannot refresh. (Our provider stores it and refreshes.)"""
    a = stacks["a"]
    step = journeys[client]["expired_after_restart"]
    assert step.texts() == ["expired after restart"], step.explain()
    assert step.logins == 1, step.explain()
    to_mcp_origin = step.sent(a.url)
    if client == "fastmcp":  # the refresh token, sent to the resource server's origin
        assert ("POST", "/token", 404) in to_mcp_origin, step.explain()
    else:
        assert to_mcp_origin[0][2] == 401, step.explain()
        assert ("POST", "/token", 404) not in to_mcp_origin, step.explain()
