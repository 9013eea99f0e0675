"""DeviceLogin: what the user sees while the flow runs the device authorization grant."""

from __future__ import annotations

import io

import pytest

from mcp_client_auth.errors import AuthorizationError
from mcp_client_auth.login import DeviceLogin


def test_show_with_complete_uri() -> None:
    out = io.StringIO()
    DeviceLogin(output=out).show(
        "https://as.example/device",
        "WDJB-MJHT",
        "https://as.example/device?user_code=WDJB-MJHT",
        600,
    )
    text = out.getvalue()
    assert "https://as.example/device?user_code=WDJB-MJHT" in text
    assert "Code: WDJB-MJHT" in text  # still shown, to compare with the page
    assert "https://as.example/device and enter the code" in text
    assert "valid for 10 min" in text


def test_show_without_complete_uri() -> None:
    out = io.StringIO()
    DeviceLogin(output=out).show("https://as.example/device", "WDJB-MJHT", None, None)
    text = out.getvalue()
    assert "    https://as.example/device\n" in text
    assert "    WDJB-MJHT\n" in text
    assert "valid for" not in text


def test_server_text_cannot_drive_the_terminal() -> None:
    out = io.StringIO()
    DeviceLogin(output=out).show(
        "https://as.example/\x1b]0;pwned\x07device", "AB\x1b[2JCD", None, 60
    )
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text


def test_open_browser_opens_only_web_pages() -> None:
    opened: list[str] = []

    def opener(url: str) -> bool:
        opened.append(url)
        return True

    out = io.StringIO()
    login = DeviceLogin(output=out, open_browser=True, opener=opener)
    login.show("https://as.example/device", "CODE", "https://as.example/device?c=CODE", 60)
    assert opened == ["https://as.example/device?c=CODE"]
    assert "Opened the page" in out.getvalue()
    login.show("javascript:alert(1)", "CODE", None, 60)
    login.show("file:///etc/passwd", "CODE", None, 60)
    assert len(opened) == 1
    assert "Could not open a browser" in out.getvalue()
    DeviceLogin(output=io.StringIO(), opener=opener).show("https://as.example/d", "C", None, 1)
    assert len(opened) == 1  # open_browser defaults to off


async def test_start_says_no_device_flow() -> None:
    with pytest.raises(AuthorizationError, match="does not offer the device flow"):
        await DeviceLogin().start(redirect_uri=None, redirect_port=None)


async def test_wait_sleeps_and_clears_the_status_line(tty_output: io.StringIO) -> None:
    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    login = DeviceLogin(output=tty_output, clock=lambda: now[0])
    login._sleep = sleep
    login.show("https://as.example/device", "CODE", None, 600)
    await login.wait(2.2)
    assert slept == pytest.approx([1.0, 1.0, 0.2])  # the whole interval, a second at a time
    text = tty_output.getvalue()
    assert "Waiting for you to approve" in text
    assert "10:00 left" in text and "9:59 left" in text and "9:58 left" in text
    assert text.endswith("\r\x1b[2K")  # the flow's next line starts clean


async def test_wait_plain_lines_are_rate_limited() -> None:
    out = io.StringIO()
    now = [1000.0]
    login = DeviceLogin(output=out, clock=lambda: now[0])
    login.show("https://as.example/device", "CODE", None, 600)
    for _ in range(5):
        await login.wait(0)
        now[0] += 5
    assert out.getvalue().count("Waiting for you to approve") == 1
    now[0] += 60
    await login.wait(0)
    assert out.getvalue().count("Waiting for you to approve") == 2
    assert "\r" not in out.getvalue()


@pytest.mark.timeout(10)
async def test_wait_ends_even_where_the_clock_stands_still() -> None:
    """``clock=`` is for the countdown; the wait itself still ends after ``interval``."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    login = DeviceLogin(output=io.StringIO(), clock=lambda: 1000.0)
    login._sleep = sleep
    await login.wait(2.5)
    assert sum(slept) == pytest.approx(2.5)
