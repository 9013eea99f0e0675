"""The device grant (RFC 8628), driven as a generator: the code shown, the polls and sleeps."""

from __future__ import annotations

import pytest

from mcp_client_auth.effects import ShowDeviceCode, Sleep
from mcp_client_auth.errors import AuthorizationError
from mcp_client_auth.flow import DEVICE_GRANT

from .sansio import (
    DEVICE,
    ISSUER,
    REGISTER,
    RESOURCE,
    SERVER_METADATA,
    TOKEN,
    Clock,
    Steps,
    answer,
    challenge,
    flow,
    form,
    tokens_body,
)

METADATA = {**SERVER_METADATA, "device_authorization_endpoint": DEVICE}
CODE = {
    "device_code": "dc-1",
    "user_code": "WDJB-MJHT",
    "verification_uri": ISSUER + "/device",
    "verification_uri_complete": ISSUER + "/device?user_code=WDJB-MJHT",
    "expires_in": 600,
    "interval": 3,
}


def until_the_code_is_shown(steps: Steps, code: dict[str, object] = CODE) -> ShowDeviceCode:
    steps.discover(server_metadata=METADATA)
    steps.saved()
    registration = steps.request("POST", REGISTER)
    assert b'"urn:ietf:params:oauth:grant-type:device_code"' in (registration.body or b"")
    steps.send(answer(registration, 201, {"client_id": "device-client"}))
    assert steps.saved().client is not None
    authorization = steps.request("POST", DEVICE)
    assert form(authorization) == {"resource": RESOURCE, "client_id": "device-client"}
    steps.send(answer(authorization, 200, code))
    return steps.expect(ShowDeviceCode)


def poll(steps: Steps, clock: Clock, *, sleeps: float) -> dict[str, str]:
    """The next sleep (its length checked, the clock moved) and the poll after it."""
    assert steps.expect(Sleep).seconds == sleeps
    clock.now += sleeps
    steps.send(None)
    request = steps.request("POST", TOKEN)
    return form(request)


def test_the_code_is_shown_then_polled_for_at_the_servers_pace() -> None:
    clock = Clock()
    auth = flow(clock=clock, device=True)
    steps = Steps(auth.authorize(challenge()))
    shown = until_the_code_is_shown(steps)
    assert (shown.verification_uri, shown.user_code) == (CODE["verification_uri"], "WDJB-MJHT")
    assert shown.verification_uri_complete == CODE["verification_uri_complete"]
    assert shown.expires_in == 600
    steps.send(None)
    sent = poll(steps, clock, sleeps=3)
    assert sent == {
        "grant_type": DEVICE_GRANT,
        "device_code": "dc-1",
        "resource": RESOURCE,
        "client_id": "device-client",
    }
    steps.send(answer(steps.effect, 400, {"error": "authorization_pending"}))
    poll(steps, clock, sleeps=3)
    steps.send(answer(steps.effect, 400, {"error": "slow_down"}))
    poll(steps, clock, sleeps=8)  # slow_down adds five seconds
    steps.send(answer(steps.effect, 200, tokens_body("at-device")))
    stored = steps.saved()
    assert stored.tokens is not None and stored.tokens.access_token == "at-device"
    assert steps.done and steps.result == stored.tokens


def test_a_denied_login_ends_the_polling() -> None:
    clock = Clock()
    steps = Steps(flow(clock=clock, device=True).authorize(challenge()))
    until_the_code_is_shown(steps)
    steps.send(None)
    poll(steps, clock, sleeps=3)
    with pytest.raises(AuthorizationError, match="denied on the other device"):
        steps.send(answer(steps.effect, 400, {"error": "access_denied"}))


def test_the_wait_never_outlasts_the_login_timeout() -> None:
    clock = Clock()
    steps = Steps(flow(clock=clock, device=True, login_timeout=5.0).authorize(challenge()))
    until_the_code_is_shown(steps)
    steps.send(None)
    poll(steps, clock, sleeps=3)
    steps.send(answer(steps.effect, 400, {"error": "authorization_pending"}))
    assert steps.expect(Sleep).seconds == 2  # what is left of the five seconds, not 3
    clock.now += 2
    steps.send(None)
    request = steps.request("POST", TOKEN)
    assert request.timeout is not None and request.timeout <= 5  # the last poll's grace
    with pytest.raises(AuthorizationError, match="no approval within 5 s"):
        steps.send(answer(request, 400, {"error": "authorization_pending"}))


def test_a_server_without_the_device_grant_is_told_apart() -> None:
    steps = Steps(flow(device=True).authorize(challenge()))
    steps.discover()
    with pytest.raises(AuthorizationError, match="does not offer the device flow"):
        steps.saved()


def test_an_interval_of_zero_does_not_make_the_client_spin() -> None:
    clock = Clock()
    steps = Steps(flow(clock=clock, device=True).authorize(challenge()))
    until_the_code_is_shown(steps, {**CODE, "interval": 0})
    steps.send(None)
    poll(steps, clock, sleeps=1.0)
