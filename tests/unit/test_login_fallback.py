"""Which login runs when no browser can be used, through the provider against fake servers.

The fake authorization server here also plays the device authorization grant (RFC 8628): it
answers the device authorization request and, for each poll, the next of a scripted list of
errors before it issues tokens (only to a client registered for the device grant, as a real
server does).
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_client_auth import OAuthClientProvider, TokenStore
from mcp_client_auth.login import BrowserLogin, NoBrowserError, PasteLogin
from mcp_client_auth.login.browser import DEVICE_FALLBACK_NOTE

from .fake_servers import ISSUER, RESOURCE, FakeServers, Seen
from .test_provider_flow import own_transport

pytestmark = pytest.mark.timeout(30)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_ENDPOINT = f"{ISSUER}/device_authorization"
USER_CODE = "WDJB-MJHT"


@dataclass
class DeviceServers(FakeServers):
    """FakeServers whose authorization server offers the device grant when ``device`` is set."""

    device: bool = True
    interval: float = 0.01
    expires_in: int = 600
    poll_errors: list[str] = field(default_factory=list)  # answers before the approval
    device_codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def _authorization_server(self, issuer: str, seen: Seen, reply: Any) -> Any:
        if self.device and seen.url == DEVICE_ENDPOINT:
            client = self.clients.get(seen.form.get("client_id", ""))
            if client is None or DEVICE_GRANT not in client.get("grant_types", []):
                return reply(400, {"error": "unauthorized_client"})
            code = "dc-" + secrets.token_urlsafe(8)
            self.device_codes[code] = seen.form
            return reply(
                200,
                {
                    "device_code": code,
                    "user_code": USER_CODE,
                    "verification_uri": f"{issuer}/device",
                    "expires_in": self.expires_in,
                    "interval": self.interval,
                },
            )
        response = super()._authorization_server(issuer, seen, reply)
        if self.device and seen.url == f"{issuer}/.well-known/oauth-authorization-server":
            doc = json.loads(response.content)
            return reply(200, {**doc, "device_authorization_endpoint": DEVICE_ENDPOINT})
        return response

    def _token(self, issuer: str, seen: Seen, reply: Any) -> Any:
        form = seen.form
        if form.get("grant_type") != DEVICE_GRANT:
            return super()._token(issuer, seen, reply)
        asked = self.device_codes.get(form.get("device_code", ""))
        if asked is None:
            return reply(400, {"error": "invalid_grant"})
        if self.poll_errors:
            return reply(400, {"error": self.poll_errors.pop(0)})
        del self.device_codes[form["device_code"]]
        return reply(
            200,
            self._issue(issuer, asked["client_id"], asked.get("scope", ""), form["resource"], None),
        )

    def grants(self) -> list[str]:
        return [s.form.get("grant_type", "") for s in self.seen if s.path == "/token"]


def never_opens(url: str) -> bool:
    return False


def get_token(servers: FakeServers, login: Any, **kwargs: Any) -> Any:
    """The provider's ``aget_token`` against ``servers``: the token, or the error raised."""
    auth = OAuthClientProvider(
        RESOURCE,
        store=TokenStore.memory(),
        login=login,
        transport=own_transport(servers),
        **kwargs,
    )

    async def run() -> Any:
        try:
            return await auth.aget_token()
        except Exception as exc:
            return exc

    return asyncio.run(run())


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


@pytest.fixture
def no_system_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Linux machine with no display and no $BROWSER: ``webbrowser`` has nothing to open."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("webbrowser.open", lambda *a, **k: pytest.fail("a browser was started"))


# -- a browser seems available, but opening it fails ------------------------------------------


@pytest.mark.usefixtures("no_terminal")
def test_browser_that_fails_to_open_falls_back_to_the_device_flow() -> None:
    servers = DeviceServers()
    output = io.StringIO()
    tokens = get_token(servers, BrowserLogin(opener=never_opens, output=output))
    assert not isinstance(tokens, Exception), tokens
    assert tokens.access_token in servers.access
    assert servers.grants() == [DEVICE_GRANT]  # no code was ever exchanged
    text = output.getvalue()
    assert "Could not open a browser" in text
    # the reason comes first, then the device-flow instructions
    assert text.index(DEVICE_FALLBACK_NOTE) < text.index("To sign in, use a browser")
    assert USER_CODE in text


@pytest.mark.usefixtures("no_terminal")
def test_browser_that_fails_to_open_without_a_device_flow_is_no_browser_error() -> None:
    servers = DeviceServers(device=False)
    output = io.StringIO()
    error = get_token(servers, BrowserLogin(opener=never_opens, output=output))
    assert isinstance(error, NoBrowserError)
    assert servers.grants() == []
    assert DEVICE_FALLBACK_NOTE not in output.getvalue()


# -- no browser at all: the provider chooses before starting the browser login ----------------


@pytest.mark.usefixtures("no_terminal", "no_system_browser")
def test_no_browser_available_chooses_the_device_flow() -> None:
    servers = DeviceServers()
    output = io.StringIO()
    tokens = get_token(servers, BrowserLogin(output=output))
    assert not isinstance(tokens, Exception), tokens
    assert servers.grants() == [DEVICE_GRANT]
    text = output.getvalue()
    assert "Open this URL" not in text  # the browser login never started
    assert text.lstrip().startswith(DEVICE_FALLBACK_NOTE)


@pytest.mark.usefixtures("no_terminal", "no_system_browser")
def test_no_browser_and_no_device_flow_is_no_browser_error() -> None:
    servers = DeviceServers(device=False)
    error = get_token(servers, BrowserLogin(output=io.StringIO()))
    assert isinstance(error, NoBrowserError)


@pytest.mark.usefixtures("no_system_browser")
def test_no_browser_and_no_device_flow_pastes_on_a_terminal() -> None:
    servers = DeviceServers(device=False)
    output = io.StringIO()
    answers: list[str] = []

    class Approving(io.StringIO):
        """A terminal where the user pastes the address the browser was sent back to."""

        def readline(self, size: int | None = -1) -> str:
            return answers.pop(0) + "\n" if answers else ""

    login = BrowserLogin(output=output, input=Approving())
    original = login.start

    async def start(*, redirect_uri: str | None, redirect_port: int | None) -> Any:
        session = await original(redirect_uri=redirect_uri, redirect_port=redirect_port)
        real_complete = session.complete

        async def complete(url: str, *, state: str, timeout: float) -> str:
            answers.append(servers.approve(url))
            return await real_complete(url, state=state, timeout=timeout)

        session.complete = complete  # type: ignore[method-assign]
        return session

    login.start = start  # type: ignore[method-assign]
    tokens = get_token(servers, login)
    assert not isinstance(tokens, Exception), tokens
    assert servers.grants() == ["authorization_code"]
    assert "paste it here" in output.getvalue()


# -- paste-back where the authorization server sends iss (RFC 9207) --------------------------


class PastingUser(io.StringIO):
    """A terminal where the user reads the sign-in URL the login printed, approves it, and
    pastes back first ``first`` (a function of the redirected address), then the address."""

    def __init__(self, servers: FakeServers, output: io.StringIO, first: Any) -> None:
        super().__init__()
        self.servers, self.output, self.first = servers, output, first
        self.pasted: list[str] = []
        self.redirected = ""

    def readline(self, size: int | None = -1) -> str:
        if not self.redirected:
            url = self.output.getvalue().split("sign in:\n\n    ", 1)[1].split("\n", 1)[0]
            self.redirected = redirected = self.servers.approve(url)
            self.pasted = [self.first(redirected), redirected]
        return self.pasted.pop(0) + "\n" if self.pasted else ""


def code_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["code"][0]


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (code_of, "The code alone is not enough here"),
        (lambda url: url.replace("iss=", "x="), "not the answer to this sign-in"),
    ],
    ids=["bare-code", "address-without-iss"],
)
def test_paste_refused_by_the_iss_check_asks_again(first: Any, reason: str) -> None:
    servers = FakeServers(iss_supported=True)
    output = io.StringIO()
    user = PastingUser(servers, output, first)
    tokens = get_token(servers, PasteLogin(input=user, output=output))
    assert not isinstance(tokens, Exception), tokens
    assert tokens.access_token in servers.access
    assert [s.form["grant_type"] for s in servers.seen if s.path == "/token"] == [
        "authorization_code"
    ]
    text = output.getvalue()
    assert "just the value of 'code'" not in text  # not offered where it cannot work
    refusal = next(line for line in text.splitlines() if reason in line)
    assert "Paste the whole address" in refusal
    assert "Try again" in text
    assert code_of(user.redirected) not in text  # the refusal does not echo the code


def test_paste_of_just_the_code_still_works_where_iss_is_not_sent() -> None:
    servers = FakeServers(iss_supported=None, iss_mode="missing")
    output = io.StringIO()
    user = PastingUser(servers, output, code_of)
    tokens = get_token(servers, PasteLogin(input=user, output=output))
    assert not isinstance(tokens, Exception), tokens
    assert "just the value of 'code'" in output.getvalue()
    assert "Try again" not in output.getvalue()


# -- a loopback login the user asked for is kept, device flow or not ---------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def login_through_the_listener(
    servers: FakeServers, output: io.StringIO, login: Any, **kwargs: Any
) -> Any:
    """``aget_token`` where the user opens the printed URL in a browser elsewhere, which then
    reaches the loopback listener (an SSH tunnel, say): the token, or the error raised."""
    auth = OAuthClientProvider(
        RESOURCE,
        store=TokenStore.memory(),
        login=login,
        transport=own_transport(servers),
        **kwargs,
    )
    task = asyncio.ensure_future(auth.aget_token())
    marker = "sign in:\n\n    "
    while marker not in output.getvalue() and not task.done():
        await asyncio.sleep(0.01)
    if marker in output.getvalue():
        url = output.getvalue().split(marker, 1)[1].split("\n", 1)[0]
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.get(servers.approve(url))
        assert answer.status_code == 200
    try:
        return await task
    except Exception as exc:
        return exc


@pytest.mark.parametrize("how", ["open_browser=False", "port", "redirect_port"])
@pytest.mark.usefixtures("no_terminal", "no_system_browser")
def test_an_explicit_loopback_login_is_not_switched_to_the_device_flow(how: str) -> None:
    servers = DeviceServers()
    output = io.StringIO()
    port = free_port()
    login = BrowserLogin(output=output, open_browser=how != "open_browser=False")
    kwargs: dict[str, Any] = {}
    if how == "port":
        login = BrowserLogin(port=port, output=output)
    elif how == "redirect_port":
        kwargs["redirect_port"] = port
    tokens = asyncio.run(login_through_the_listener(servers, output, login, **kwargs))
    assert not isinstance(tokens, Exception), tokens
    assert servers.grants() == ["authorization_code"]
    text = output.getvalue()
    assert DEVICE_FALLBACK_NOTE not in text
    if how in ("port", "redirect_port"):  # the URL is for a browser elsewhere: say how
        assert f"ssh -L {port}:127.0.0.1:{port}" in text
