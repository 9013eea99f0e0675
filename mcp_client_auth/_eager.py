"""Run a store coroutine at once, without an event loop, when it never suspends.

The default store reads its small files without awaiting anything, so one ``send`` completes
its coroutines. A process that only reconnects (the sync driver's first read) or prints a token
(the CLI) then neither imports asyncio nor starts the sync portal's thread and loop: about a
tenth of such a process's time. A coroutine that does suspend is discarded at its first
suspension and the caller's ``fallback`` runs a fresh one, so use this for reads only, which
are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_eagerly(
    factory: Callable[[], Coroutine[Any, Any, T]],
    fallback: Callable[[Coroutine[Any, Any, T]], T],
) -> T:
    """``factory()`` run to its end here if it never suspends, else ``fallback(factory())``."""
    coroutine = factory()
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    return fallback(factory())
