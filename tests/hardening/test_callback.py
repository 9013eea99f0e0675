"""The authorization callback: BrowserLogin's loopback listener, through the whole flow.

The "browser" is the login's opener: it receives the authorization URL and sends real HTTP
requests over loopback to the listener, as a browser (or an attacker's page, or a flood)
would. The listener's own behaviour request by request is tested in
tests/login/test_browser_login.py (404s, HEAD prefetch, Host header, non-loopback peers,
slowloris); here the point is what reaches the flow and the store: only the right callback,
checked for ``state`` and ``iss``, exchanged once.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_client_auth import AuthorizationError, TokenStore
from mcp_client_auth.login import BrowserLogin, listener

from .drive import assert_clean, outcome, provider, send, stored
from .hostile import EVIL, Hostile

pytestmark = pytest.mark.timeout(40)


class Browser:
    """An opener that runs ``script(browser, authorization_url)`` and records the answers."""

    def __init__(self, servers: Hostile, script: Callable[[Browser, str], None]) -> None:
        self.servers = servers
        self.script = script
        self.answers: list[tuple[str, int | None]] = []
        self.pages: list[str] = []  # what the browser showed, one per answered request
        self.error: BaseException | None = None
        self.done = threading.Event()

    def __call__(self, url: str) -> bool:
        self.done.clear()
        try:
            self.script(self, url)
        except BaseException as exc:  # surfaced by the test, not swallowed by the login
            self.error = exc
        finally:
            self.done.set()
        return True

    def finish(self) -> None:
        """Wait for the script to end (it runs on the login's opener thread), re-raise."""
        assert self.done.wait(30), "the browser script never finished"
        if self.error is not None:
            raise self.error

    def get(self, url: str) -> int | None:
        try:
            response = httpx.get(url, timeout=5, trust_env=False)
            status: int | None = response.status_code
            self.pages.append(response.text)
        except httpx.HTTPError:
            status = None  # the listener is gone: the login is over
        self.answers.append((url, status))
        return status

    def callback(self, authorization_url: str, **changes: str | None) -> str:
        return self.servers.approve(authorization_url, **changes)


def login_with(
    servers: Hostile, script: Callable[[Browser, str], None], **kwargs: object
) -> tuple[object, Browser, io.StringIO, TokenStore]:
    browser = Browser(servers, script)
    output = io.StringIO()
    store = TokenStore.memory()
    login = BrowserLogin(opener=browser, output=output)
    auth = provider(servers, store, login=login, **kwargs)  # type: ignore[arg-type]
    result = outcome(servers, auth)
    browser.finish()
    return result, browser, output, store


def code_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["code"][0]


def redirect_uri_of(authorization_url: str) -> str:
    return parse_qs(urlsplit(authorization_url).query)["redirect_uri"][0]


def test_wrong_state_is_ignored_and_the_right_callback_wins() -> None:
    def script(b: Browser, url: str) -> None:
        forged = b.callback(url, state="forged-state")
        assert b.get(forged) == 400
        assert b.get(b.callback(url)) == 200

    result, browser, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    forged_code = code_of(browser.answers[0][0])
    exchanged = [s.form["code"] for s in browser.servers.token_requests("authorization_code")]
    assert forged_code not in exchanged and len(exchanged) == 1


def test_callback_without_state_is_ignored() -> None:
    def script(b: Browser, url: str) -> None:
        assert b.get(b.callback(url, state=None)) == 400
        assert b.get(b.callback(url)) == 200

    result, browser, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    assert len(browser.servers.token_requests()) == 1


def test_an_error_without_state_is_ignored_and_the_login_goes_on() -> None:
    """Any local process, or any web page, can send a request to 127.0.0.1: an ``error=``
    answer without this login's state must not end the login (RFC 6749 4.1.2.1: a real
    server sends the state back with its errors too)."""

    def script(b: Browser, url: str) -> None:
        listener = redirect_uri_of(url)
        assert b.get(f"{listener}?error=access_denied") == 400
        assert b.get(f"{listener}?error=access_denied&error_description=forged&state=") == 400
        assert b.get(b.callback(url, code=None, error="server_error", state="forged")) == 400
        assert b.get(b.callback(url)) == 200

    result, browser, output, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    assert len(browser.servers.token_requests("authorization_code")) == 1
    assert all("not the current one" in page for page in browser.pages[:3]), browser.pages
    assert "forged" not in output.getvalue()


def test_iss_of_another_server_is_refused() -> None:
    """RFC 9207 mix-up defence: the right state, a real code, but another issuer."""
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(b.callback(url, iss=EVIL))

    result, browser, _, store = login_with(servers, script)
    assert_clean(
        result, AuthorizationError, r"issuer 'https://evil.example'.*mix-up", servers.secrets
    )
    # the browser says so too, not "Signed in" (the listener asks the flow before answering)
    assert browser.answers[0][1] == 400
    [page] = browser.pages
    assert "Sign-in refused" in page and "Signed in" not in page
    assert "evil.example" not in page  # nothing the attacker wrote
    assert [s for s in servers.secrets if s in page] == []
    assert servers.token_requests() == []  # the code was never sent anywhere
    record = stored(store, servers)
    assert record is not None and record.tokens is None


def test_missing_iss_where_advertised_is_refused() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(b.callback(url, iss=None))

    result, _, _, _ = login_with(servers, script)
    assert_clean(result, AuthorizationError, r"no iss parameter.*RFC 9207", servers.secrets)
    assert servers.token_requests() == []


def test_iss_is_compared_exactly() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(b.callback(url, iss=servers.issuer + "/"))

    result, _, _, _ = login_with(servers, script)
    assert_clean(result, AuthorizationError, r"mix-up", servers.secrets)


def test_missing_code_keeps_waiting_then_the_right_callback_wins() -> None:
    def script(b: Browser, url: str) -> None:
        assert b.get(b.callback(url, code=None)) == 400
        assert b.get(b.callback(url, code="")) == 400
        assert b.get(b.callback(url)) == 200

    result, browser, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    assert len(browser.servers.token_requests()) == 1


def test_only_a_callback_without_code_times_out_cleanly() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        assert b.get(b.callback(url, code=None)) == 400

    # The login's timeout leaves the script's one request seconds to be answered (400),
    # however busy the machine; then nothing more comes and the login ends by the timeout.
    result, browser, _, _store = login_with(servers, script, timeout=6)
    assert_clean(result, AuthorizationError, r"did not finish within", servers.secrets)
    assert servers.token_requests() == []
    port = urlsplit(browser.answers[0][0]).port
    with socket.socket() as sock:  # the listener is closed
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_repeated_callbacks_exchange_the_code_once() -> None:
    def script(b: Browser, url: str) -> None:
        right = b.callback(url)
        assert b.get(right) == 200
        for _ in range(3):
            b.get(right)  # a "finished" page, or nothing listens any more: never a 2nd login
        second = b.callback(url)  # a second, fresh code with the same state
        b.get(second)

    result, browser, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    exchanged = [s.form["code"] for s in browser.servers.token_requests("authorization_code")]
    assert exchanged == [code_of(browser.answers[0][0])]


def test_duplicated_parameters_are_refused() -> None:
    def script(b: Browser, url: str) -> None:
        right = b.callback(url)
        assert b.get(right + "&code=attacker-code") == 400
        assert b.get(right + "&state=x") == 400
        assert b.get(right) == 200

    result, browser, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    assert [s.form["code"] for s in browser.servers.token_requests()] == [
        code_of(browser.answers[-1][0])
    ]


def test_access_denied_ends_the_login_and_keeps_the_registration() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(
            b.callback(url, code=None, error="access_denied", error_description="The user said no")
        )

    result, _, _, store = login_with(servers, script)
    error = assert_clean(result, AuthorizationError, r"access_denied", servers.secrets)
    assert error.error == "access_denied"  # type: ignore[attr-defined]
    assert servers.token_requests() == []
    record = stored(store, servers)
    assert record is not None and record.tokens is None and record.client is not None


def test_error_and_code_together_is_an_error() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(b.callback(url, error="server_error"))

    result, _, _, _ = login_with(servers, script)
    assert_clean(result, AuthorizationError, r"server_error", servers.secrets)
    assert servers.token_requests() == []


def test_stale_callback_from_an_earlier_login_is_ignored() -> None:
    """A second login on the same registered port: the first login's answer is replayed."""
    servers = Hostile()
    answers: list[str] = []

    def first(b: Browser, url: str) -> None:
        answers.append(b.callback(url))
        b.get(answers[0])

    store = TokenStore.memory()
    browser = Browser(servers, first)
    auth = provider(servers, store, login=BrowserLogin(opener=browser, output=io.StringIO()))
    assert send(servers, auth).status_code == 200
    browser.finish()

    def second(b: Browser, url: str) -> None:
        assert redirect_uri_of(url) == answers[0].split("?")[0]  # the registered port again
        assert b.get(answers[0]) == 400  # stale state
        assert b.get(b.callback(url)) == 200

    browser.script = second
    servers.required_scope = "admin"  # forces a second, step-up login
    servers.scopes_supported = ["read", "write", "admin"]
    response = send(servers, auth)
    browser.finish()
    assert response.status_code == 200
    codes = [s.form["code"] for s in servers.token_requests("authorization_code")]
    assert len(codes) == 2 and len(set(codes)) == 2


def test_flood_of_requests_then_the_right_callback_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 connections that never finish their request head, and 300 wrong requests, do not
    hold up the right callback. The listener's head timeout is set beyond the test's own
    timeout: a listener that made the callback wait for the slow connections (one at a time,
    or a few at a time) would never answer it, and the test would fail by its timeout."""
    monkeypatch.setattr(listener, "HEAD_TIMEOUT", 3600.0)
    servers = Hostile()

    async def flood(b: Browser, url: str) -> None:
        redirect = redirect_uri_of(url)
        port = urlsplit(redirect).port
        assert port is not None

        async def slow() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /callback?code=x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            await writer.drain()
            return reader, writer

        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(timeout=20, trust_env=False, limits=limits) as client:

            async def junk(i: int) -> None:
                try:
                    if i % 3 == 0:
                        await client.get(b.callback(url, state=f"wrong{i}"))
                    elif i % 3 == 1:
                        await client.get(redirect.replace("/callback", f"/x{i}"))
                    else:
                        await client.post(b.callback(url))
                except httpx.HTTPError:
                    pass

            held = await asyncio.gather(*(slow() for _ in range(30)))
            tasks = [asyncio.ensure_future(junk(i)) for i in range(300)]
            await asyncio.sleep(0.05)  # the flood under way
            response = await client.get(b.callback(url))
            assert response.status_code == 200
            for _, writer in held:
                writer.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    result, _browser, _, _ = login_with(servers, lambda b, url: asyncio.run(flood(b, url)))
    assert getattr(result, "status_code", None) == 200, result
    assert len(servers.token_requests("authorization_code")) == 1


def _non_loopback_address() -> str | None:
    """This machine's own non-loopback IPv4 address (a connected UDP socket sends nothing:
    the kernel only picks the source address for it). Connecting to it stays on this host."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never contacted
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_listener_is_not_reachable_from_another_address() -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try from")
    reachable: list[bool] = []

    def script(b: Browser, url: str) -> None:
        port = urlsplit(redirect_uri_of(url)).port
        assert urlsplit(redirect_uri_of(url)).hostname == "127.0.0.1"
        with socket.socket() as sock:
            sock.settimeout(2)
            reachable.append(sock.connect_ex((address, port)) == 0)
        b.get(b.callback(url))

    result, _, _, _ = login_with(Hostile(), script)
    assert getattr(result, "status_code", None) == 200, result
    assert reachable == [False]


def test_nothing_secret_is_shown_to_the_user() -> None:
    servers = Hostile()

    def script(b: Browser, url: str) -> None:
        b.get(b.callback(url))

    result, _, output, _ = login_with(servers, script)
    assert getattr(result, "status_code", None) == 200, result
    shown = output.getvalue()
    assert "Open this URL" in shown
    assert not [s for s in servers.secrets if s in shown]


# -- a login callable (CallbackLogin): whatever string it returns goes to the flow -------------


def returning(make: Callable[[Hostile, str], str]) -> Callable[[Hostile], Callable[[str], str]]:
    return lambda servers: lambda url: make(servers, url)


CALLABLE_CASES = [
    pytest.param(
        returning(lambda s, url: s.approve(url, state="forged")),
        r"state does not match",
        id="wrong-state",
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, state=None)), r"has no state", id="no-state"
    ),
    pytest.param(returning(lambda s, url: s.approve(url, code=None)), r"has no code", id="no-code"),
    pytest.param(
        returning(lambda s, url: s.approve(url, code="")), r"has no code", id="empty-code"
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, iss=EVIL)), r"mix-up", id="iss-of-another-server"
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, iss=None)), r"no iss parameter", id="iss-missing"
    ),
    pytest.param(returning(lambda s, url: ""), r"no authorization response", id="empty"),
    pytest.param(
        returning(lambda s, url: "just some text"), r"no authorization response", id="text"
    ),
    pytest.param(
        returning(lambda s, url: url),
        r"has no code|no iss parameter",
        id="the-authorization-url-itself",
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, code=None, error="access_denied")),
        r"access_denied",
        id="access-denied",
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, code=None, error="access_denied", state=None)),
        r"^(?!.*access_denied).*has no state",
        id="access-denied-without-state",
    ),
    pytest.param(
        returning(lambda s, url: s.approve(url, code=None, error="access_denied") + "&state=x"),
        r"^(?!.*access_denied).*more than one state",
        id="access-denied-with-a-second-state",
    ),
    pytest.param(
        returning(lambda s, url: "http://[::1/callback?" + s.approve(url).split("?")[1]),
        r"callback|authorization response",
        id="unbalanced-ipv6-bracket",
    ),
    pytest.param(
        returning(
            lambda s, url: s.approve(
                url,
                code=None,
                error="server_error",
                error_description="a\x1b[2J\r\nforged log line",
            )
        ),
        r"^[^\x00-\x1f\x7f]*$",
        id="control-characters-in-description",
    ),
]


@pytest.mark.parametrize(("make", "pattern"), CALLABLE_CASES)
def test_login_callable_answers(
    make: Callable[[Hostile], Callable[[str], str]], pattern: str
) -> None:
    servers = Hostile()
    store = TokenStore.memory()
    error = outcome(servers, provider(servers, store, login=make(servers)))
    if isinstance(error, Exception) and not isinstance(error, AuthorizationError):
        raise error
    assert_clean(error, AuthorizationError, pattern, servers.secrets)
    assert servers.token_requests() == []
    record = stored(store, servers)
    assert record is not None and record.tokens is None
