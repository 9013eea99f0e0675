"""The device grant's polling (RFC 8628 3.5), through the provider, on a clock of the test's.

The login's ``wait`` (what the provider calls for the flow's ``Sleep`` effect) records the
interval asked for and moves the clock on instead of sleeping, so the intervals, slow_down's
5 s, and which of the two limits (the code's lifetime, the login's timeout) ended the wait
are all asserted exactly.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from mcp_client_auth import AuthorizationError
from mcp_client_auth.login import DeviceLogin

from .test_login_fallback import DEVICE_GRANT, DeviceServers, get_token

pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class RecordingDeviceLogin(DeviceLogin):
    """DeviceLogin whose wait between polls records the interval and advances the clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(output=io.StringIO())
        self.clock = clock
        self.waits: list[float] = []

    async def wait(self, interval: float) -> None:
        self.waits.append(interval)
        self.clock.now += interval


def device_login(servers: DeviceServers, timeout: float = 300.0) -> tuple[Any, list[float]]:
    clock = Clock()
    login = RecordingDeviceLogin(clock)
    return get_token(servers, login, clock=clock, timeout=timeout), login.waits


def test_slow_down_adds_five_seconds_to_every_later_poll() -> None:
    servers = DeviceServers(
        interval=2,
        poll_errors=["authorization_pending", "slow_down", "slow_down", "authorization_pending"],
    )
    tokens, waits = device_login(servers)
    assert not isinstance(tokens, Exception), tokens
    assert waits == [2, 2, 7, 12, 12]
    assert servers.grants() == [DEVICE_GRANT] * 5
    assert all(s.form["resource"] for s in servers.seen if s.path == "/token")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("expired_token", "the device code expired before the login was approved"),
        ("access_denied", "the login was denied on the other device"),
    ],
)
def test_expired_token_and_access_denied_end_the_login(error: str, message: str) -> None:
    servers = DeviceServers(interval=3, poll_errors=["authorization_pending", error])
    failure, waits = device_login(servers)
    assert isinstance(failure, AuthorizationError)
    assert message in str(failure) and failure.error == error
    assert waits == [3, 3]  # no poll after the answer that ended it
    assert servers.grants() == [DEVICE_GRANT] * 2


def test_login_timeout_shorter_than_the_code_says_no_approval_in_time() -> None:
    servers = DeviceServers(interval=10, expires_in=600, poll_errors=["authorization_pending"] * 99)
    failure, waits = device_login(servers, timeout=30)
    assert isinstance(failure, AuthorizationError)
    assert str(failure).startswith("no approval within 30 s;")
    assert "expired" not in str(failure)
    assert waits == [10, 10, 10]


def test_code_lifetime_shorter_than_the_login_timeout_says_the_code_expired() -> None:
    servers = DeviceServers(interval=10, expires_in=25, poll_errors=["authorization_pending"] * 99)
    failure, waits = device_login(servers, timeout=300)
    assert isinstance(failure, AuthorizationError)
    assert "the device code expired before the login was approved" in str(failure)
    assert waits == [10, 10, 5]  # never past the code's lifetime
