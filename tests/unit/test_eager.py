"""``_eager.run_eagerly``: a coroutine that never suspends runs at once, one that does is
handed, fresh, to the fallback (the sync driver's first store read, see provider._drive_sync)."""

from __future__ import annotations

import asyncio

from mcp_client_auth._eager import run_eagerly


def test_a_coroutine_that_never_suspends_runs_here_without_the_fallback() -> None:
    started: list[int] = []

    async def read() -> str:
        started.append(1)
        return "record"

    def fallback(_: object) -> str:
        raise AssertionError("the fallback ran for a coroutine that never suspends")

    assert run_eagerly(read, fallback) == "record"
    assert started == [1]


def test_a_coroutine_that_suspends_is_run_again_by_the_fallback() -> None:
    started: list[int] = []

    async def read() -> str:
        started.append(1)
        await asyncio.sleep(0)  # a real store's network read
        return "record"

    assert run_eagerly(read, asyncio.run) == "record"
    assert started == [1, 1]  # the first run was discarded at its suspension, then run anew


def test_an_error_of_a_coroutine_that_never_suspends_is_raised_once() -> None:
    calls: list[int] = []

    async def read() -> str:
        calls.append(1)
        raise LookupError("unreadable")

    try:
        run_eagerly(read, asyncio.run)
    except LookupError as exc:
        assert str(exc) == "unreadable"
    else:
        raise AssertionError("the error was lost")
    assert calls == [1]
