"""Shared fixtures: the REAL authorization server and a protected resource, on 127.0.0.1.

- ``start_realas(**knobs)``: starts oidc-provider (``tests/realas/server.mjs``, under node) and
  the protected resource (``tests/realas/rs_server.py``, under uvicorn) wired to each other, each
  on a free loopback port, and returns a :class:`RealStack`. Knobs are the servers' environment
  variables (see the header of each file): ``AT_TTL="2"``, ``INTERACTION_MODE="dev"``,
  ``DEVICE_FLOW="0"``, ``REVOCATION="0"``, ``AS_LOG_EVENTS="1"``, ``RS_VALIDATION="introspect"``,
  ``RS_REQUIRED_SCOPE="mcp:read"``, ``MCP_SCOPES=...``, ``EXTRA_CLIENTS=json.dumps([...])``...
  Defaults: ``INTERACTION_MODE=auto`` (every login step is a plain redirect), ``AT_TTL=5``.
  Everything it started is killed at teardown.
- ``realas``: one stack with the defaults, shared by the whole session (register your own
  client; use ``start_realas`` for a fresh or differently configured one).
- ``realas_login``: a ``login`` callable (authorization URL -> the URL the browser was sent back
  to) for ``INTERACTION_MODE=auto``: follows the authorization server's redirects and stops at the
  first one that leaves it.
- ``approve_device``: completes an RFC 8628 user step (``verification_uri_complete``) in
  ``INTERACTION_MODE=auto``, the way a person would in a browser.

The authorization server's packages are installed by ``.ci/run``; by hand:
``(cd tests/realas && npm ci)``. Without them these fixtures fail (they never skip).
"""

from __future__ import annotations

import html
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.servers.processes import (
    LOOPBACK,
    REALAS_DIR,
    Server,
    as_metadata,
    http_ok,
    listening_socket,
    prm_url,
    spawn,
    start_auth_server,
    wait_for,
)

_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "", None}
UNIT_TIER = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The unit tier holds no integration test: ``scripts/test --fast`` runs ``tests/unit`` as
    a whole, so a test there that starts real servers would slow every contributor's check (see
    tests/README.md for where such a test goes)."""
    misplaced = [
        item.nodeid
        for item in items
        if item.path.is_relative_to(UNIT_TIER) and item.get_closest_marker("integration")
    ]
    if misplaced:
        raise pytest.UsageError(
            "integration tests in tests/unit (move them to tests/integration or their subject's "
            f"folder): {', '.join(misplaced)}"
        )


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test stays on this machine: a lookup of any name that is not loopback is refused
    and fails the test, even when the test expected an error anyway (the fake servers' names,
    mcp.example.com or evil.example, exist only behind MockTransport and pytest-httpx, so a
    lookup of one means a request was about to leave the machine). Child processes are not
    covered; they reach only the servers the tests started on 127.0.0.1."""
    real = socket.getaddrinfo
    refused: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK_NAMES and not str(name).startswith("127."):
            refused.append(str(name))
            raise socket.gaierror(socket.EAI_NONAME, f"tests stay on loopback, not {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield
    assert not refused, f"the test tried to reach names off this machine: {sorted(set(refused))}"


StartRealAS = Callable[..., "RealStack"]


@dataclass
class RealStack:
    """The authorization server and the protected resource that trusts it."""

    issuer: str  # http://127.0.0.1:<port>, no trailing slash (oidc-provider's issuer)
    resource: str  # http://127.0.0.1:<port>/mcp: the protected resource (MCP endpoint) URL
    prm_url: str  # its RFC 9728 metadata, at the path-inserted well-known URL
    auth_server: Server
    resource_server: Server
    settings: dict[str, str] = field(default_factory=dict)  # the knobs it was started with

    @property
    def rs_base(self) -> str:
        return self.resource.rsplit("/", 1)[0]

    def as_metadata(self) -> dict[str, Any]:
        return as_metadata(self.issuer)

    def events(self) -> list[dict[str, Any]]:
        return self.auth_server.events()


class RealASLauncher:
    """Starts real stacks (see :func:`start_realas`) and stops every one it started."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[Server] = []

    def start(self, **knobs: str) -> RealStack:
        workdir = self._tmp.mktemp("realas")
        with listening_socket() as rs_socket:  # the resource server's, held until it starts
            return self._start(workdir, rs_socket, knobs)

    def _start(self, workdir: Path, rs_socket: socket.socket, knobs: dict[str, str]) -> RealStack:
        rs_port = int(rs_socket.getsockname()[1])
        resource = f"http://{LOOPBACK}:{rs_port}/mcp"
        settings = {
            "AS_HOST": LOOPBACK,
            "AS_PORT": "0",
            "INTERACTION_MODE": "auto",
            "MCP_RESOURCE": resource,
            **knobs,
        }
        auth_server, port = start_auth_server(
            workdir, settings, "as", "authorization server (tests/realas/server.mjs)"
        )
        self._started.append(auth_server)
        issuer = f"http://{LOOPBACK}:{port}{knobs.get('ISSUER_PATH', '')}"

        rs_env = {**os.environ, **settings, "RS_HOST": LOOPBACK, "RS_PORT": str(rs_port)}
        rs_env |= {"AS_ISSUER": issuer, "RS_FD": str(rs_socket.fileno())}
        resource_server = spawn(
            "protected resource (tests/realas/rs_server.py)",
            [sys.executable, "rs_server.py"],
            rs_env,
            REALAS_DIR,
            workdir / "rs.log",
            pass_fds=(rs_socket.fileno(),),
        )
        self._started.append(resource_server)
        wait_for(resource_server, lambda: http_ok(f"http://{LOOPBACK}:{rs_port}/healthz"))
        return RealStack(
            issuer=issuer,
            resource=resource,
            prm_url=prm_url(f"http://{LOOPBACK}:{rs_port}"),
            auth_server=auth_server,
            resource_server=resource_server,
            settings=settings,
        )

    def stop_all(self) -> None:
        for server in reversed(self._started):
            server.stop()
        self._started.clear()


@pytest.fixture
def start_realas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRealAS]:
    """Factory: start a real AS + protected resource with the given environment knobs; each
    test gets its own, stopped at its end."""
    launcher = RealASLauncher(tmp_path_factory)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="session")
def realas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    """One real AS (auto interaction, 5 s access tokens) and its protected resource, shared by
    the whole session: for tests that only register their own clients and log in. A test that
    needs other knobs, a fresh AS, or to stop it, uses ``start_realas``."""
    launcher = RealASLauncher(tmp_path_factory)
    yield launcher.start()
    launcher.stop_all()


def follow_to_redirect_uri(authorization_url: str, *, max_hops: int = 20) -> str:
    """What a browser does in INTERACTION_MODE=auto: follow the authorization server's redirects
    (login, consent) and return the first URL outside it: the redirect URI with the response."""
    origin = urlsplit(authorization_url)[:2]
    url = authorization_url
    with httpx.Client(follow_redirects=False, timeout=10) as browser:  # keeps the AS's cookies
        for _ in range(max_hops):
            response = browser.get(url)
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                raise AssertionError(
                    f"the authorization server answered {response.status_code} at {url} "
                    f"instead of redirecting: {response.text[:500]}"
                )
            url = urljoin(url, location)
            if urlsplit(url)[:2] != origin:
                return url
    raise AssertionError(f"more than {max_hops} redirects from {authorization_url}")


@pytest.fixture
def realas_login() -> Callable[[str], str]:
    """A ``login`` callable for INTERACTION_MODE=auto (see :func:`follow_to_redirect_uri`)."""
    return follow_to_redirect_uri


_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input\b([^>]*)>", re.I)
_ATTR = re.compile(r'([\w.-]+)="([^"]*)"')


def approve_device_code(verification_uri_complete: str, *, max_forms: int = 5) -> str:
    """A person's part of the device flow in INTERACTION_MODE=auto: open the verification URI,
    submit each form the AS shows (the code, the confirmation; login and consent are automatic)
    and return the final page's HTML ("Sign-in Success")."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        response = browser.get(verification_uri_complete)
        for _ in range(max_forms):
            form = _FORM.search(response.text)
            if form is None:
                if "Success" not in response.text:
                    raise AssertionError(f"device flow did not succeed: {response.text[:800]}")
                return response.text
            action = html.unescape(dict(_ATTR.findall(form.group(1))).get("action", ""))
            fields = {}
            for tag in _INPUT.findall(form.group(2)):
                attrs = dict(_ATTR.findall(tag))
                if "name" in attrs:
                    fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
            response = browser.post(urljoin(str(response.url), action), data=fields)
    raise AssertionError(f"more than {max_forms} forms from {verification_uri_complete}")


@pytest.fixture
def approve_device() -> Callable[[str], str]:
    """Completes a device flow's user step (see :func:`approve_device_code`)."""
    return approve_device_code
