"""The device login's user code is server text that only a person reads: every ``show`` (the
library's own, an application's, the provider's fallback) gets it with control, bidi and
invisible characters made visible, and bounded."""

from __future__ import annotations

import json

from mcp_client_auth.effects import HttpResponse
from mcp_client_auth.grants.device import read_device_code

DEVICE = "https://auth.example.com/device_authorization"


def answer(user_code: str) -> HttpResponse:
    body = {
        "device_code": "dc-1",
        "user_code": user_code,
        "verification_uri": "https://auth.example.com/device",
    }
    return HttpResponse(
        200, {"content-type": "application/json"}, json.dumps(body).encode(), DEVICE
    )


def test_an_ordinary_user_code_is_kept_as_sent() -> None:
    assert read_device_code(answer("WDJB-MJHT")).user_code == "WDJB-MJHT"


def test_a_user_code_with_terminal_escapes_and_bidi_is_made_visible() -> None:
    code = read_device_code(answer("\x1b]0;owned\x07\x1b[2J\u202eEDOC")).user_code
    assert "\x1b" not in code and "\x07" not in code and "\u202e" not in code
    assert code.endswith("EDOC") and "\\x1b" in code and "\\u202e" in code


def test_a_user_code_longer_than_anyone_types_is_bounded() -> None:
    assert len(read_device_code(answer("A" * 100_000)).user_code) <= 64
