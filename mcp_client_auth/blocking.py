"""Run this library's coroutines from synchronous code, at once where they never suspend.

The store's methods are coroutines, so that one interface serves the disk store and Redis.
The default store reads its small files without awaiting anything, so one ``send`` completes
its coroutines: synchronous code (the sync driver's first read, a command-line tool) then
needs no event loop, no thread and no asyncio import for it. A coroutine that does suspend is
discarded at its first suspension and a fresh one runs to its end on the sync portal's event
loop (a daemon thread, the one the sync driver uses), so call this for reads only, which are
safe to start twice.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["finish_now", "on_portal", "run_blocking", "run_now"]

T = TypeVar("T")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """The result of ``factory()``'s coroutine, run here if it never suspends, else run again
    on the sync portal's event loop: ``run_blocking(lambda: store.get(url))``.

    ``factory`` must make a new coroutine on each call, and running it twice must be harmless
    (a read): the first run is dropped where it suspends.
    """
    return run_now(factory, on_portal)


def run_now(
    factory: Callable[[], Coroutine[Any, Any, T]],
    fallback: Callable[[Coroutine[Any, Any, T]], T],
) -> T:
    """:func:`run_blocking` with another way to run a coroutine that suspends (``fallback``
    gets a fresh one from ``factory``, ``asyncio.run`` say)."""
    finished, result = _run_to_first_suspension(factory())
    return result if finished else fallback(factory())  # type: ignore[return-value]


def finish_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run to its end here, for a store that never suspends (a write, which must
    not be started twice as :func:`run_blocking` may start a read).

    Without an event loop in this thread, a coroutine can suspend only on a bare ``yield``
    (anything of asyncio's raises at once): one that does so breaks the store's promise, and
    is reported as the store's defect rather than left half done.
    """
    finished, result = _run_to_first_suspension(coroutine)
    if finished:
        return result  # type: ignore[return-value]
    raise RuntimeError(
        "a token store that says it never suspends (never_suspends = True) suspended; "
        "set never_suspends = False on it"
    )


def _run_to_first_suspension(coroutine: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """(True, its result) when ``coroutine`` ends without suspending; else it is closed where
    it suspended and (False, None)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return True, done.value
    coroutine.close()
    return False, None


def on_portal(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine`` run to its end on the sync portal's event loop (a daemon thread), which
    is started, with asyncio imported, on first use."""
    from ._portal import run_sync

    return run_sync(coroutine)
