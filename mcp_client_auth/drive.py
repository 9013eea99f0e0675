"""The drivers: run the provider's steps (``resource.py``) for httpx and httpx2.

As in httpx's own auth flows, a driver only passes things along: the caller's request goes to
the caller's client and its response comes back; every other item the steps yield is an
effect, which the performer turns into a value, or an error that the driver throws into the
steps at the point that asked (where the flow may handle it). The performer holds what a run
holds (lock, login sessions, client) and lets go of it in ``close``, however the run ends. It
is made at the first effect.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .perform_async import AsyncPerformer
    from .perform_sync import SyncPerformer
    from .resource import Steps

__all__ = ["drive_async", "drive_sync", "run_async"]


class _Run:
    """The steps of one run as an iterator: each item comes from sending the steps the answer
    to the last one, or throwing in the error it raised."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.answer: Any = None
        self.error: Exception | None = None

    def __iter__(self) -> _Run:
        return self

    def __next__(self) -> Any:
        error, self.error = self.error, None
        answer, self.answer = self.answer, None
        if error is not None:
            return self.steps.throw(error)
        return self.steps.send(answer)


def drive_sync(
    steps: Steps, request: Any, performer: Callable[[], SyncPerformer]
) -> Generator[Any, Any, None]:
    """An httpx ``sync_auth_flow`` (``request``'s body already read): yields ``request``
    whenever the steps send it."""
    run = _Run(steps)
    running: SyncPerformer | None = None
    try:
        for item in run:
            if item is request:
                run.answer = yield request
                continue
            running = running or performer()
            try:
                run.answer = running.perform(item)
            except Exception as exc:  # the steps decide what it means
                run.error = exc
    finally:
        steps.close()
        if running is not None:
            running.close()


async def drive_async(
    steps: Steps, request: Any, performer: Callable[[], AsyncPerformer]
) -> AsyncGenerator[Any, Any]:
    """An httpx ``async_auth_flow`` (``request``'s body already read): yields ``request``
    whenever the steps send it."""
    run = _Run(steps)
    running: AsyncPerformer | None = None
    try:
        for item in run:
            if item is request:
                run.answer = yield request
                continue
            running = running or performer()
            try:
                run.answer = await running.perform(item)
            except Exception as exc:  # the steps decide what it means
                run.error = exc
    finally:
        steps.close()
        if running is not None:
            await running.close()


async def run_async(steps: Steps, performer: Callable[[], AsyncPerformer]) -> Any:
    """Run steps that send no request of the caller's; what they return."""
    result: list[Any] = []

    def keeping_result() -> Steps:
        result.append((yield from steps))

    async for _ in drive_async(keeping_result(), object(), performer):
        raise AssertionError("these steps send no request")  # pragma: no cover
    return result[0]
