"""``run_blocking``: a coroutine that never suspends runs at once, one that does is run again,
fresh, elsewhere (the sync performer's store reads, and the command-line tool's)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mcp_client_auth import run_blocking
from mcp_client_auth.blocking import finish_now
from mcp_client_auth.blocking import run_now as run_eagerly


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


def test_run_blocking_runs_a_suspending_coroutine_on_the_portal_thread() -> None:
    threads: list[str] = []

    async def read() -> str:
        threads.append(threading.current_thread().name)
        await asyncio.sleep(0)
        return "record"

    assert run_blocking(read) == "record"
    here = threading.current_thread().name
    assert threads[0] == here and threads[1] != here  # started here, then run on the portal


def test_run_blocking_runs_a_coroutine_that_never_suspends_in_this_thread() -> None:
    threads: list[str] = []

    async def read() -> str:
        threads.append(threading.current_thread().name)
        return "record"

    assert run_blocking(read) == "record"
    assert threads == [threading.current_thread().name]


def test_a_write_that_never_suspends_finishes_here_once() -> None:
    written: list[str] = []

    async def write() -> str:
        written.append("record")
        return "done"

    assert finish_now(write()) == "done"
    assert written == ["record"]


def test_a_write_that_suspends_is_a_clear_error_and_is_not_run_again() -> None:
    """A store that claims it never suspends but does: said, never started a second time."""
    written: list[str] = []
    finished: list[str] = []

    async def write() -> None:
        written.append("begun")
        await asyncio.sleep(0)  # a bare yield: the one way to suspend without an event loop
        finished.append("end")

    with pytest.raises(RuntimeError, match="never_suspends = False"):
        finish_now(write())
    assert written == ["begun"] and finished == []
