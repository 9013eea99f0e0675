"""A real browser against the real authorization server: headless Chromium signs in.

The authorization server is oidc-provider (``tests/realas/server.mjs``) in its ``dev``
interaction mode: its own HTML pages, a login form (any login and password are accepted; the
login becomes the token's ``sub``) and a consent form, each with a ``[ Cancel ]`` link, and for
the device flow (RFC 8628) a page to type the user code into and one to confirm it. Chromium,
driven by Selenium, plays the user on those pages; ``OAuthClientProvider`` does the rest
(discovery, registration, PKCE, the token request) and then calls the protected resource
(``tests/realas/rs_server.py``), which checks the token.

- the authorization code flow with ``BrowserLogin(opener=...)``: the opener fills in the real
  login and consent forms; Chromium ends on the loopback callback's success page, which is
  saved as a screenshot (in ``$MCP_CLIENT_AUTH_ARTIFACTS`` when set);
- the device flow with ``DeviceLogin``: its ``show`` hook starts the browser on the server's
  verification page, once typing the user code into the server's form and once opening
  ``verification_uri_complete``, while the provider polls;
- the user clicks ``[ Cancel ]`` on the real consent page: ``access_denied``, no tokens stored.

Chromium stays on loopback (every other host name fails to resolve; the ``driver`` fixture in
conftest.py), and fails the tests (never skips) when it is missing. The server's pages would
import web fonts from Google; server.mjs strips that.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_client_auth import AuthorizationError, OAuthClientProvider, TokenStore
from mcp_client_auth.login import BrowserLogin, DeviceLogin
from mcp_client_auth.login.browser import BrowserLoginSession
from tests.conftest import RealASLauncher, RealStack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("no_stdin_terminal"),
    pytest.mark.timeout(240),  # Chromium on a busy 2-core CI machine: generous
]

USER = "alice-in-chromium"  # typed into the real login form; the token's ``sub``
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
STEP = 30  # seconds any one page may take to appear in the browser (a busy CI machine)
LOGIN_TIMEOUT = 120  # seconds for a whole login: several pages, each up to STEP


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    """The real AS with its HTML login and consent pages, and the resource that trusts it.

    One per module (each test registers its own client, and each Chromium has a fresh profile,
    so no sign-in carries over); 60-second access tokens so none goes stale mid-test.
    """
    launcher = RealASLauncher(tmp_path_factory)
    try:
        yield launcher.start(INTERACTION_MODE="dev", AT_TTL="60")
    finally:
        launcher.stop_all()


def _artifact_dir(tmp_path: Path) -> Path:
    where = Path(os.environ.get("MCP_CLIENT_AUTH_ARTIFACTS", tmp_path / "artifacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def _until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    """Wait up to STEP seconds for ``condition``; on a timeout, say what the browser shows."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, STEP).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"{what} within {STEP} s; the browser shows {driver.title!r} at {driver.current_url}"
        ) from None


def _find(driver: Any, css: str) -> Any:
    """The element once it is on the page (after a navigation, the new page's)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    located = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    return _until(driver, located, f"no {css}")


def _sign_in(driver: Any) -> None:
    """The real login form: any login and password; the login becomes the subject."""
    _find(driver, "form input[name=login]").send_keys(USER)
    _find(driver, "form input[name=password]").send_keys("any password will do")
    _find(driver, "form button[type=submit]").click()


def _consent(driver: Any, *, cancel: bool = False) -> None:
    """The real consent form: Continue, or the ``[ Cancel ]`` link beside it."""
    _find(driver, "form input[name=prompt][value=consent]")
    assert driver.find_element("css selector", ".login-card h1").text == "Authorize"
    if cancel:
        link = _find(driver, "a[href$='/abort']")
        assert link.text == "[ Cancel ]"
        link.click()
    else:
        _find(driver, "form button[type=submit]").click()


def _wait_for_title(driver: Any, title: str) -> None:
    _until(driver, lambda d: d.title == title, f"no page titled {title!r}")
    _until(
        driver,
        lambda d: d.execute_script("return document.readyState") == "complete",
        f"{title!r} did not finish loading",
    )


class _BrowserUser:
    """Runs the person's part in the browser (on another thread); keeps what went wrong."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.started = threading.Event()
        self.done = threading.Event()

    def run(self, steps: Callable[[], None]) -> bool:
        self.started.set()
        try:
            steps()
            return True
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.failures.append(exc)
            return False  # BrowserLogin: "could not open a browser", so the login ends now
        finally:
            self.done.set()

    def check(self) -> None:
        if self.failures:
            raise self.failures[0]

    async def settle(self) -> None:
        """Wait for the browser to finish, and raise what went wrong there: the root cause
        of whatever the provider raised."""
        if self.started.is_set():
            await asyncio.to_thread(self.done.wait, 30)
        self.check()


@pytest.fixture
def callback_urls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every answer BrowserLogin hands to the flow (the callback URL, code included)."""
    seen: list[str] = []
    complete = BrowserLoginSession.complete

    async def recording(self: BrowserLoginSession, url: str, *, state: str, timeout: float) -> str:
        answer = await complete(self, url, state=state, timeout=timeout)
        seen.append(answer)
        return answer

    monkeypatch.setattr(BrowserLoginSession, "complete", recording)
    return seen


async def _call_resource(provider: OAuthClientProvider, stack: RealStack) -> httpx.Response:
    """The MCP client's request: a 401 starts the login, then the retry carries the token."""
    async with httpx.AsyncClient(auth=provider, timeout=10) as client:
        return await asyncio.wait_for(client.post(stack.resource, json=PING), 45)


def _assert_served(response: httpx.Response, stack: RealStack) -> None:
    assert response.status_code == 200, response.text
    auth = response.json()["result"]["auth"]
    assert auth["sub"] == USER  # the login typed into the real form
    assert auth["aud"] == stack.resource
    assert auth["scope"] == "mcp:tools"


# -- the authorization code flow: BrowserLogin with Chromium as the system browser ---------


async def test_chromium_signs_in_on_the_real_server(
    driver: Any, dev_stack: RealStack, tmp_path: Path, callback_urls: list[str]
) -> None:
    user = _BrowserUser()

    def in_the_browser(url: str) -> None:
        assert url.startswith(dev_stack.as_metadata()["authorization_endpoint"] + "?")
        driver.get(url)
        _wait_for_title(driver, "Sign-in")
        _sign_in(driver)
        _consent(driver)
        _wait_for_title(driver, "Signed in")  # the loopback callback's page

    store = TokenStore.memory()
    output = io.StringIO()
    login = BrowserLogin(opener=lambda url: user.run(lambda: in_the_browser(url)), output=output)
    provider = OAuthClientProvider(
        dev_stack.resource, store=store, login=login, timeout=LOGIN_TIMEOUT
    )
    try:
        response = await _call_resource(provider, dev_stack)
    finally:
        await user.settle()
    _assert_served(response, dev_stack)

    (answer,) = callback_urls
    record = await store.get(dev_stack.resource)
    assert record is not None and record.tokens is not None and record.tokens.refresh_token
    assert record.client is not None
    assert answer.startswith(record.client.redirect_uris[0] + "?")
    params = httpx.URL(answer).params
    assert params["iss"] == dev_stack.issuer
    code = params["code"]
    secrets = [code, record.tokens.access_token, record.tokens.refresh_token]

    # what the user sees at the end: the success page, with no code or token in it
    assert driver.title == "Signed in"
    text = driver.find_element("tag name", "body").text
    assert "Signed in" in text and "passed the sign-in back to the application" in text
    assert "code=" not in driver.current_url
    for secret in secrets:
        assert secret not in driver.page_source
        assert secret not in driver.current_url
        assert secret not in output.getvalue()
    shot = _artifact_dir(tmp_path) / "browser-login-realas-success.png"
    assert driver.save_screenshot(str(shot))
    print(f"screenshot of the success page: {shot}")
    assert shot.is_file() and shot.stat().st_size > 1000
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_chromium_cancels_on_the_real_consent_page(
    driver: Any, dev_stack: RealStack, tmp_path: Path, callback_urls: list[str]
) -> None:
    user = _BrowserUser()

    def in_the_browser(url: str) -> None:
        driver.get(url)
        _sign_in(driver)
        _consent(driver, cancel=True)
        _wait_for_title(driver, "Sign-in did not complete")

    store = TokenStore.memory()
    login = BrowserLogin(
        opener=lambda url: user.run(lambda: in_the_browser(url)), output=io.StringIO()
    )
    provider = OAuthClientProvider(
        dev_stack.resource, store=store, login=login, timeout=LOGIN_TIMEOUT
    )
    with pytest.raises(AuthorizationError) as denied:
        try:
            await _call_resource(provider, dev_stack)
        finally:
            await user.settle()
    assert denied.value.error == "access_denied"
    assert "access_denied" in str(denied.value)
    assert callback_urls == []  # the flow never saw the callback URL
    assert provider.tokens is None
    record = await store.get(dev_stack.resource)
    assert record is None or record.tokens is None  # the client registration, at most
    text = driver.find_element("tag name", "body").text
    assert "access_denied" in text and "cancelled or refused" in text
    driver.save_screenshot(str(_artifact_dir(tmp_path) / "browser-login-realas-denied.png"))


# -- the device flow: DeviceLogin; the user approves in Chromium on the server's pages -----


class _ChromiumDevice(DeviceLogin):
    """A DeviceLogin whose user goes to the shown page in Chromium while the flow polls."""

    def __init__(self, driver: Any, *, type_the_code: bool) -> None:
        super().__init__(output=io.StringIO())
        self.driver = driver
        self.type_the_code = type_the_code
        self.user = _BrowserUser()
        self.shown: tuple[str, str, str | None] | None = None
        self.thread: threading.Thread | None = None

    def show(
        self,
        verification_uri: str,
        user_code: str,
        verification_uri_complete: str | None = None,
        expires_in: float | None = None,
    ) -> None:
        super().show(verification_uri, user_code, verification_uri_complete, expires_in)
        assert self.thread is None, "the code was shown twice"
        self.shown = (verification_uri, user_code, verification_uri_complete)
        steps = lambda: self._approve(verification_uri, user_code, verification_uri_complete)  # noqa: E731
        self.thread = threading.Thread(target=self.user.run, args=(steps,), daemon=True)
        self.thread.start()

    async def wait(self, interval: float) -> None:
        self.user.check()  # a failed browser step ends the login now, not at its timeout
        await super().wait(interval)

    def _approve(self, verification_uri: str, user_code: str, complete: str | None) -> None:
        driver = self.driver
        if self.type_the_code:
            driver.get(verification_uri)
            box = _find(driver, "form input[name=user_code]")
            box.send_keys(user_code)
            _find(driver, "button[type=submit][form='op.deviceInputForm']").click()
        else:
            assert complete is not None
            driver.get(complete)  # the server's page posts the code by itself
        _wait_for_title(driver, "Device Login Confirmation")
        assert _find(driver, "code").text == user_code  # what the user compares
        _find(driver, "button[form='op.deviceConfirmForm']:not([name=abort])").click()
        _wait_for_title(driver, "Sign-in")
        _sign_in(driver)
        _consent(driver)
        _wait_for_title(driver, "Sign-in Success")


@pytest.mark.parametrize("type_the_code", [True, False], ids=["user-code-typed", "complete-uri"])
async def test_chromium_approves_a_device_login(
    driver: Any, dev_stack: RealStack, tmp_path: Path, type_the_code: bool
) -> None:
    store = TokenStore.memory()
    login = _ChromiumDevice(driver, type_the_code=type_the_code)
    provider = OAuthClientProvider(
        dev_stack.resource, store=store, login=login, timeout=LOGIN_TIMEOUT
    )
    try:
        response = await _call_resource(provider, dev_stack)
    finally:
        await login.user.settle()
    _assert_served(response, dev_stack)

    assert login.shown is not None
    verification_uri, user_code, complete = login.shown
    assert verification_uri == f"{dev_stack.issuer}/device"
    assert complete == f"{verification_uri}?user_code={user_code}"
    record = await store.get(dev_stack.resource)
    assert record is not None and record.tokens is not None
    assert "Sign-in Success" in driver.find_element("tag name", "body").text
    for secret in (record.tokens.access_token, record.tokens.refresh_token):
        assert secret and secret not in driver.page_source
    name = "user-code" if type_the_code else "complete-uri"
    driver.save_screenshot(str(_artifact_dir(tmp_path) / f"device-login-realas-{name}.png"))
