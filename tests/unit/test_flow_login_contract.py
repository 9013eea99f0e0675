"""What the flow's performers call on a login: ``show_device_code`` and ``sleep``, with
defaults every ``Login`` has, and the overrides of the device and browser logins."""

from __future__ import annotations

import asyncio
import io

import pytest

from mcp_client_auth.effects import ShowDeviceCode
from mcp_client_auth.login import BrowserLogin, CallbackLogin, DeviceLogin, UseDeviceFlow

CODE = ShowDeviceCode(
    "https://as.example/device", "\x1b[2JWDJB\u202e-MJHT", "https://as.example/device?c=1", 600
)


def test_any_login_shows_a_device_code_as_one_clean_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(CallbackLogin(lambda url: url).show_device_code(CODE))
    err = capsys.readouterr().err
    assert err.startswith("To sign in, open https://as.example/device?c=1 and enter the code ")
    assert "WDJB" in err and "\x1b" not in err and "\u202e" not in err
    assert err.count("\n") == 1


def test_any_login_sleeps_between_polls() -> None:
    assert asyncio.run(CallbackLogin(lambda url: url).sleep(0)) is None


def test_the_device_login_shows_the_page_and_the_code() -> None:
    output = io.StringIO()
    asyncio.run(DeviceLogin(output=output).show_device_code(CODE))
    shown = output.getvalue()
    assert "https://as.example/device?c=1" in shown and "WDJB" in shown
    assert "\x1b" not in shown and "The code is valid for 10 min" in shown


def test_the_browser_login_says_why_it_shows_a_device_code() -> None:
    output = io.StringIO()
    asyncio.run(BrowserLogin(output=output).show_device_code(CODE))
    shown = output.getvalue()
    assert "No browser can be opened here; using the device flow instead." in shown
    assert "WDJB" in shown


def test_use_device_flow_is_a_value() -> None:
    assert UseDeviceFlow() == UseDeviceFlow() and hash(UseDeviceFlow()) == hash(UseDeviceFlow())
    assert repr(UseDeviceFlow()) == "UseDeviceFlow()" and UseDeviceFlow() != ""


async def complete_without_a_browser(login: BrowserLogin) -> object:
    session = await login.start(redirect_uri=None, redirect_port=None)
    try:
        session.offer_device_flow()
        return await session.complete("https://as.example/authorize", state="s", timeout=5)
    finally:
        await session.aclose()


def test_a_browser_login_that_reaches_nobody_answers_use_device_flow() -> None:
    login = BrowserLogin(output=io.StringIO(), opener=lambda url: False)  # no terminal under pytest
    assert asyncio.run(complete_without_a_browser(login)) == UseDeviceFlow()


def test_the_proxy_login_never_hands_over_to_the_device_flow() -> None:
    from mcp_client_auth.login import NoBrowserError
    from mcp_client_auth.proxy.login import ProxyLogin

    login = ProxyLogin(output=io.StringIO(), opener=lambda url: False)
    with pytest.raises(NoBrowserError):
        asyncio.run(complete_without_a_browser(login))
