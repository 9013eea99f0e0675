"""The flow's effects are immutable values (plain ``__slots__`` classes, not dataclasses):
equal by type and fields, hashable where their fields are, refusing assignment, and with no
secret in their repr."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from mcp_client_auth.effects import (
    CompleteLogin,
    GetSubjectToken,
    HttpRequest,
    HttpResponse,
    LoadRecord,
    SaveRecord,
    Sleep,
    StartLogin,
)
from mcp_client_auth.errors import TokenError
from mcp_client_auth.tokens import ServerRecord, TokenSet

SECRET = "refresh-secret-4c1d"


def test_equal_by_type_and_fields() -> None:
    assert Sleep(2.0) == Sleep(2.0) and Sleep(2.0) != Sleep(3.0)
    assert StartLogin(None) == StartLogin(None) != StartLogin("http://127.0.0.1:1/callback")
    assert LoadRecord() == LoadRecord()
    assert Sleep(0.0) != StartLogin(None)  # another type: never equal, whatever its fields
    assert hash(Sleep(2.0)) == hash(Sleep(2.0))
    assert len({LoadRecord(), LoadRecord(), Sleep(1.0), Sleep(1.0)}) == 2


def test_immutable() -> None:
    sleep = Sleep(1.0)
    with pytest.raises(FrozenInstanceError):
        sleep.seconds = 5.0
    with pytest.raises(FrozenInstanceError):
        del sleep.seconds
    with pytest.raises(AttributeError):
        sleep.other = 1
    assert sleep.seconds == 1.0


def test_no_secret_in_a_repr() -> None:
    form = {"grant_type": "refresh_token", "refresh_token": SECRET}
    request = HttpRequest.post_form(
        "https://as.example/token", form, what="token refresh", error=TokenError
    )
    assert SECRET.encode() in (request.body or b"")
    response = HttpResponse(200, {}, f'{{"access_token": "{SECRET}"}}'.encode(), "https://as/t")
    record = ServerRecord(resource="https://mcp.example/mcp", tokens=TokenSet(access_token=SECRET))
    session: Any = object()  # never used by a repr
    login = CompleteLogin(
        session, f"https://as.example/authorize?state={SECRET}", SECRET, 300.0, lambda url: SECRET
    )
    effects = (request, response, SaveRecord(record), GetSubjectToken(SECRET), login)
    for effect in effects:
        assert SECRET not in repr(effect), type(effect).__name__
    assert "https://as.example/token" in repr(request)  # still says what it is


def test_copied_and_pickled_as_values() -> None:
    for effect in (Sleep(1.5), StartLogin("http://127.0.0.1:8765/callback"), LoadRecord()):
        assert copy.copy(effect) == effect
        assert copy.deepcopy(effect) == effect
        assert pickle.loads(pickle.dumps(effect)) == effect
