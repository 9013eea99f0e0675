"""BrowserLogin with a real browser: headless Chromium is the "system browser".

A tiny authorization page served by the test on 127.0.0.1 stands in for the authorization
server: it shows Approve and Deny buttons and redirects to the callback with ``code`` and
``state`` (or ``error``). Chromium, driven by Selenium through BrowserLogin's ``opener`` hook,
plays the user. The browser is kept on loopback: every other host name fails to resolve.

These tests need Debian's ``chromium`` and ``chromium-driver`` packages and fail (not skip)
without them, so a CI image that lost them is noticed (the ``driver`` fixture, in conftest.py).
"""

from __future__ import annotations

import asyncio
import html
import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mcp_client_auth.errors import AuthorizationError
from mcp_client_auth.login import BrowserLogin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("no_stdin_terminal"),
    pytest.mark.timeout(240),  # Chromium on a busy 2-core CI machine: generous
]

CODE = "real-browser-code-5521"
STEP = 30  # seconds any one page may take in Chromium (a busy 2-core CI machine)


class _AuthorizePage(BaseHTTPRequestHandler):
    """GET /authorize shows the consent form; POST /decide redirects to the callback."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/authorize":
            self.send_error(404)
            return
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k in ("redirect_uri", "state")
        )
        body = (
            "<!doctype html><title>Authorize</title><form method=post action=/decide>"
            f"{hidden}<button id=approve name=decision value=approve>Approve</button>"
            "<button id=deny name=decision value=deny>Deny</button></form>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if form.get("decision") == "approve":
            answer = {"code": CODE, "state": form["state"], "iss": self.server_url()}
        else:
            answer = {
                "error": "access_denied",
                "error_description": "The user clicked Deny",
                "state": form["state"],
            }
        self.send_response(302)
        self.send_header("Location", form["redirect_uri"] + "?" + urlencode(answer))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def server_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def authorization_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthorizePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _artifact_dir(tmp_path: Path) -> Path:
    where = Path(os.environ.get("MCP_CLIENT_AUTH_ARTIFACTS", tmp_path / "artifacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


async def _login_in_browser(
    driver: Any, authorization_server: str, button: str, *, stale_first: bool = False
) -> tuple[Any, str, threading.Event]:
    """Run one BrowserLogin whose browser is Chromium; the opener clicks ``button``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    state = "state-from-the-flow-77"
    output = io.StringIO()
    opened = threading.Event()
    failures: list[BaseException] = []

    def opener(url: str) -> bool:
        try:
            if stale_first:  # an old tab from an earlier attempt: refused, login goes on
                driver.get(session.redirect_uri + "?code=old&state=stale")
                assert "not the current one" in driver.title
            driver.get(url)
            WebDriverWait(driver, STEP).until(
                expected_conditions.element_to_be_clickable((By.ID, button))
            ).click()
            WebDriverWait(driver, STEP).until(lambda d: d.title != "Authorize")
            WebDriverWait(driver, STEP).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            opened.set()
        return True

    login = BrowserLogin(opener=opener, output=output)
    session = await login.start(redirect_uri=None, redirect_port=None)
    authorize = f"{authorization_server}/authorize?" + urlencode(
        {"redirect_uri": session.redirect_uri, "state": state, "client_id": "test"}
    )
    try:
        result: Any = await session.complete(authorize, state=state, timeout=60)
    except AuthorizationError as exc:
        result = exc
    await asyncio.to_thread(opened.wait, 30)
    if failures:
        raise failures[0]
    return result, session.redirect_uri, opened


async def test_chromium_completes_the_login(
    driver: Any, authorization_server: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    result, redirect_uri, _ = await _login_in_browser(
        driver, authorization_server, "approve", stale_first=True
    )
    assert isinstance(result, str), result
    query = parse_qs(urlsplit(result).query)
    assert result.startswith(redirect_uri + "?")
    assert query["code"] == [CODE]
    assert query["state"] == ["state-from-the-flow-77"]
    assert query["iss"] == [authorization_server]
    # the browser shows the success page, and the code is gone from the address bar
    assert driver.title == "Signed in"
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "close this tab" in text
    assert CODE not in driver.page_source
    assert driver.current_url == redirect_uri
    shot = _artifact_dir(tmp_path) / "browser-login-success.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000


async def test_chromium_denied_login(
    driver: Any, authorization_server: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    result, _, _ = await _login_in_browser(driver, authorization_server, "deny")
    assert isinstance(result, AuthorizationError)
    assert result.error == "access_denied"
    assert result.description == "The user clicked Deny"
    assert driver.title == "Sign-in did not complete"
    assert "The user clicked Deny" in driver.find_element(By.TAG_NAME, "body").text
    driver.save_screenshot(str(_artifact_dir(tmp_path) / "browser-login-denied.png"))
