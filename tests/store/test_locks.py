"""Cross-process locks, with real processes: no lost update, timeouts, a dead holder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth.errors import StorageError
from mcp_client_auth.store import TokenStore, locks
from mcp_client_auth.store.locks import FileLock
from mcp_client_auth.tokens import ServerRecord

URL = "https://mcp.example.com/mcp"

COUNTER = textwrap.dedent(
    """
    import asyncio, dataclasses, sys, time
    from mcp_client_auth.store import TokenStore

    async def main(directory, rounds, locked):
        store = TokenStore.default(directory)
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for _ in range(rounds):
            if locked:
                async with store.lock(sys.argv[4]):
                    await bump(store)
            else:
                await bump(store)

    async def bump(store):
        record = await store.get(sys.argv[4])
        time.sleep(0.002)  # a refresh takes a while: widen the window a race needs
        n = record.extra["n"] + 1
        await store.put(dataclasses.replace(record, extra={"n": n}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "locked"))
    """
)


@pytest.fixture
def shared_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())


async def run_counters(directory: Path, mode: str, processes: int = 8, rounds: int = 25) -> int:
    store = TokenStore.default(directory)
    await store.put(ServerRecord(URL, extra={"n": 0}))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, str(directory), str(rounds), mode, URL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in children:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in children:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in children:
        assert proc.wait(timeout=120) == 0
    record = await store.get(URL)
    assert record is not None
    n: int = record.extra["n"]
    return n


@pytest.mark.usefixtures("shared_key")
async def test_eight_processes_lose_no_update(tmp_path: Path) -> None:
    assert await run_counters(tmp_path / "store", "locked") == 8 * 25


@pytest.mark.usefixtures("shared_key")
async def test_without_the_lock_updates_are_lost(tmp_path: Path) -> None:
    """The control: the same test without the lock fails, so the test above has teeth."""
    assert await run_counters(tmp_path / "store", "unlocked") < 8 * 25


@pytest.mark.usefixtures("shared_key")
async def test_lock_files_are_hashed_and_private(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path / "store")
    async with store.lock(URL):
        pass
    names = [p.name for p in (tmp_path / "store" / "locks").iterdir()]
    assert len(names) == 2  # the store's own, and this resource's
    assert all("example" not in n and "mcp" not in n for n in names)
    for p in (tmp_path / "store" / "locks").iterdir():
        assert p.stat().st_mode & 0o777 == 0o600


@pytest.mark.timeout(30)
async def test_timeout_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.lock"
    tries = count_tries(monkeypatch)
    with FileLock(path, timeout=1, what="holder"):
        # 1 s, not less: a busy machine may pause this process for a few tenths of a second,
        # and the wait must still see several tries before its limit
        with pytest.raises(StorageError) as info:
            async with FileLock(path, timeout=1, what=URL):
                pass
        assert len(tries) > 2  # it waited and tried again before giving up
        with pytest.raises(StorageError):
            FileLock(path, timeout=0.1, what=URL).acquire()  # the sync form too
    assert not any(tries[1:])  # the holder kept it throughout: no try succeeded
    message = str(info.value)
    assert "waited 1 s" in message and str(path) in message and URL in message
    assert "another process holds it" in message


HOLDER = textwrap.dedent(
    """
    import sys, time
    from mcp_client_auth.store.locks import FileLock
    lock = FileLock(sys.argv[1], timeout=5, what="test")
    lock.acquire()
    print("held", flush=True)
    time.sleep(600)
    """
)


def count_tries(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record the result of every try to take a file lock."""
    tries: list[bool] = []
    real = locks.try_lock

    def counting(fd: int) -> bool:
        tries.append(real(fd))
        return tries[-1]

    monkeypatch.setattr(locks, "try_lock", counting)
    return tries


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every delay the async wait sleeps for (it sleeps with anyio)."""
    import anyio

    delays: list[float] = []
    real = anyio.sleep

    async def recording(delay: float) -> None:
        delays.append(delay)
        await real(delay)

    monkeypatch.setattr(anyio, "sleep", recording)
    return delays


@pytest.mark.timeout(60)
async def test_a_dead_holder_frees_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        delays = record_sleeps(monkeypatch)
        waiter = asyncio.create_task(FileLock(path, timeout=30, what="test").acquire_async())
        # until the back-off has reached its cap and slept at it a few times (not a fixed
        # while: on a busy machine the waiter may have tried only a few times in 0.5 s)
        for _ in range(600):  # 30 s at least
            if delays.count(locks._MAX_DELAY) >= 3 or waiter.done():
                break
            await asyncio.sleep(0.05)
        assert not waiter.done()
        assert delays.count(locks._MAX_DELAY) >= 3, delays  # the back-off reached its cap
        os.kill(holder.pid, signal.SIGKILL)
        await asyncio.wait_for(waiter, timeout=10)
        # the back-off grew to its cap and no further: a dead holder is noticed within 100 ms
        assert max(delays) == locks._MAX_DELAY
        assert delays == sorted(delays)
    finally:
        holder.kill()
        holder.wait()


async def test_waiting_leaves_the_event_loop_free(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    holder = FileLock(path, timeout=1, what="test")
    holder.acquire()
    ticks = 0

    async def ticker() -> None:
        # Runs only while the waiter leaves the loop free, and frees the lock only after
        # 20 ticks: a wait that blocked the loop would never see it freed (its 30 s limit:
        # StorageError). Counted, not timed, so a busy machine cannot fail it.
        nonlocal ticks
        while ticks < 20:
            ticks += 1
            await asyncio.sleep(0.005)
        holder.release()

    tick_task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker has started: the lock is still held
    async with FileLock(path, timeout=30, what="test"):
        assert ticks >= 20
    await tick_task


async def test_cancelled_wait_leaks_no_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    with FileLock(path, timeout=1, what="test"):
        before = len(os.listdir("/proc/self/fd"))
        waiter = asyncio.create_task(FileLock(path, timeout=30, what="test").acquire_async())
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert len(os.listdir("/proc/self/fd")) == before


async def test_tasks_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    inside = 0
    most = 0

    async def worker() -> None:
        nonlocal inside, most
        async with FileLock(path, timeout=10, what="test"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(5)))
    assert most == 1
