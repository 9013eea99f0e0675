"""Shared fixtures for the login tests."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class TTYStringIO(io.StringIO):
    """A StringIO that says it is a terminal, to exercise the live status line."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty_output() -> io.StringIO:
    return TTYStringIO()


@pytest.fixture
def no_stdin_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is not a terminal (as under CI), whatever pytest does with it."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium under Selenium, kept on loopback (every other host name fails to
    resolve); fails the test (never skips) when Debian's chromium or chromium-driver is
    missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(
            f"the real-browser tests need {', '.join(missing)}: install them with "
            "`apt-get install -y chromium chromium-driver` (Debian/Ubuntu)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=900,700",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(60)  # generous: Chromium on a busy CI machine
    try:
        yield browser
    finally:
        browser.quit()
