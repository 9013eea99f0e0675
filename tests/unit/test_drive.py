"""The drivers (``drive.py``) as plain generators, with steps and a performer written here.

What is proved: the caller's request goes out and its response comes back into the steps; an
error the performer raises is thrown into the steps at the point that asked (which may handle
it and go on); the performer is made at the first effect only, and closed exactly once however
the run ends (done, an error out of the steps, the caller's client closing the flow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from mcp_client_auth.drive import drive_async, drive_sync, run_async
from mcp_client_auth.effects import AcquireLock, LoadRecord, ReleaseLock
from mcp_client_auth.errors import StorageError, TokenError

REQUEST = object()


class Performer:
    """Answers each effect from ``answers`` (an exception there is raised)."""

    def __init__(self, answers: dict[type, Any]) -> None:
        self.answers = answers
        self.performed: list[Any] = []
        self.closed = 0

    def perform(self, effect: Any) -> Any:
        self.performed.append(effect)
        answer = self.answers.get(type(effect))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed += 1


class AsyncPerformer(Performer):
    async def perform(self, effect: Any) -> Any:  # type: ignore[override]
        return super().perform(effect)

    async def close(self) -> None:  # type: ignore[override]
        super().close()


def steps_that_recover(seen: list[Any]) -> Generator[Any, Any, str]:
    """Asks for the lock, a record (which fails), handles that, sends the request."""
    yield AcquireLock()
    try:
        yield LoadRecord()
    except StorageError as exc:
        seen.append(str(exc))
    seen.append((yield REQUEST))
    yield ReleaseLock()
    return "done"


def test_an_error_is_thrown_into_the_steps_which_may_go_on() -> None:
    seen: list[Any] = []
    performer = Performer({LoadRecord: StorageError("unreadable")})
    flow = drive_sync(steps_that_recover(seen), REQUEST, lambda: performer)
    assert next(flow) is REQUEST
    with pytest.raises(StopIteration):
        flow.send("the response")
    assert seen == ["unreadable", "the response"]
    assert performer.performed == [AcquireLock(), LoadRecord(), ReleaseLock()]
    assert performer.closed == 1


def test_an_error_the_steps_do_not_handle_ends_the_run_and_closes_once() -> None:
    def steps() -> Generator[Any, Any, None]:
        yield AcquireLock()
        yield LoadRecord()
        raise AssertionError("not reached")  # pragma: no cover

    performer = Performer({LoadRecord: TokenError("refused")})
    with pytest.raises(TokenError, match="refused"):
        next(drive_sync(steps(), REQUEST, lambda: performer))
    assert performer.closed == 1


def test_no_performer_for_steps_that_only_send_the_request() -> None:
    def steps() -> Generator[Any, Any, None]:
        yield REQUEST

    def no_performer() -> Performer:
        raise AssertionError("a performer was made for no effect")

    flow = drive_sync(steps(), REQUEST, no_performer)
    assert next(flow) is REQUEST
    with pytest.raises(StopIteration):
        flow.send("response")


def test_a_flow_closed_by_the_client_closes_the_steps_and_the_performer() -> None:
    closed: list[str] = []

    def steps() -> Generator[Any, Any, None]:
        try:
            yield AcquireLock()
            yield REQUEST
        finally:
            closed.append("steps")

    performer = Performer({})
    flow = drive_sync(steps(), REQUEST, lambda: performer)
    assert next(flow) is REQUEST
    flow.close()  # the client's send failed: httpx closes the auth flow
    assert closed == ["steps"] and performer.closed == 1


def test_the_async_driver_throws_into_the_steps_too() -> None:
    seen: list[Any] = []
    performer = AsyncPerformer({LoadRecord: StorageError("unreadable")})

    async def run() -> None:
        flow = drive_async(steps_that_recover(seen), REQUEST, lambda: performer)  # type: ignore[arg-type]
        assert await flow.asend(None) is REQUEST
        with pytest.raises(StopAsyncIteration):
            await flow.asend("the response")

    asyncio.run(run())
    assert seen == ["unreadable", "the response"]
    assert performer.closed == 1


def test_run_async_returns_what_the_steps_return() -> None:
    def steps() -> Generator[Any, Any, str]:
        record = yield LoadRecord()
        return f"got {record}"

    performer = AsyncPerformer({LoadRecord: "a record"})
    result = asyncio.run(run_async(steps(), lambda: performer))  # type: ignore[arg-type]
    assert result == "got a record" and performer.closed == 1
