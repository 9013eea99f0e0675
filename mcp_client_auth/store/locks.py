"""Cross-process locks: one lock file per resource, beside the store.

Why a file lock: two processes that refresh the same token at once each send the same refresh
token; a server that rotates refresh tokens then sees one reused and revokes the whole grant.
Holding this lock around read-refresh-write makes the second process wait and re-read instead.

How: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. Both are released by the
operating system when the holder exits or dies, so a lock file is never stale and never needs
deleting (deleting lock files is itself a race, so they stay). The lock is taken without
blocking; while another process holds it we poll, sleeping an eighth of the time already
waited (at least 1 ms, at most 100 ms): the end of a refresh (one round trip) is noticed within
an eighth of its length, a login minutes long costs ten tries a second, the event loop stays
free and a timeout ends the wait with a clear error. :meth:`FileLock.try_acquire` and
:meth:`FileLock.retry_in` expose the same steps to a caller that has something to check
between tries (the provider looks for the token another process stored meanwhile).
Separate ``open()`` calls conflict even within one process, so coroutines and threads of the
same process exclude each other too.

The lock file is opened without following a symbolic link, in a folder that must be this
user's own and not writable by others (see :mod:`.private`): otherwise whoever controls the
folder could make this process create or open a file of their choosing.

Known limit: on network file systems (NFS, SMB) ``flock`` may be local to each host; for a
store shared between hosts use a lock in the shared service itself (e.g. Redis).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ..errors import StorageError
from .private import open_private, private_folder

__all__ = ["FileLock", "FileLocks", "retry_delay", "try_lock"]

_FIRST_DELAY = 0.001
_MAX_DELAY = 0.1
_WAITED_SHARE = 8  # sleep at most this fraction (1/n) of the time already waited


def retry_delay(waited: float) -> float:
    """How long a waiter that has waited ``waited`` seconds sleeps before its next try.

    A share of the time already waited, so whoever waits is late by at most that share of
    its wait, and a long wait (a login) is not a busy loop.
    """
    return min(max(waited / _WAITED_SHARE, _FIRST_DELAY), _MAX_DELAY)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """An exclusive lock on ``path``, as an async or a sync context manager.

    Not reentrant: a holder that takes the same lock again waits for itself until the
    timeout. ``what`` names the thing protected, for the timeout message.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float, what: str) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None
        self._waiting_fd: int | None = None  # open, not locked: between tries
        self._waiting_since: float | None = None

    def _open(self) -> int:
        try:
            private_folder(self.path.parent, what="lock folder")
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT, what="lock file")
        except OSError as exc:
            raise StorageError(
                f"could not open the lock file {self.path}: {exc.strerror}; check that this "
                "user may write to that folder"
            ) from exc
        return fd

    def _timed_out(self) -> StorageError:
        self._stop_waiting()
        return StorageError(
            f"waited {self.timeout:g} s for the lock on {self.what} ({self.path}): another "
            "process holds it, most likely a login waiting for the browser or a slow refresh. "
            "Finish or stop that process and try again (the lock is freed when it exits)."
        )

    def _stop_waiting(self) -> None:
        fd, self._waiting_fd = self._waiting_fd, None
        self._waiting_since = None
        if fd is not None:
            os.close(fd)

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; ``False`` while another holds it.

        Between tries the lock file stays open: :meth:`release` closes it, held or not.
        """
        if self._fd is not None:
            raise StorageError(f"the lock on {self.what} is already held by this object")
        fd = self._waiting_fd if self._waiting_fd is not None else self._open()
        if try_lock(fd):
            self._waiting_fd = None
            self._waiting_since = None
            self._fd = fd
            return True
        self._waiting_fd = fd
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        return False

    def retry_in(self) -> float:
        """Seconds to sleep before the next :meth:`try_acquire` after a failed one.

        Raises :class:`StorageError` (and stops waiting) once the timeout has passed.
        """
        since = self._waiting_since
        waited = 0.0 if since is None else time.monotonic() - since
        remaining = self.timeout - waited
        if remaining <= 0:
            raise self._timed_out()
        return min(retry_delay(waited), remaining)

    def acquire(self) -> None:
        """Block this thread until the lock is held (for sync callers and set-up code)."""
        try:
            while not self.try_acquire():
                time.sleep(self.retry_in())
        except BaseException:
            self._stop_waiting()
            raise

    async def acquire_async(self) -> None:
        """Wait for the lock without blocking the event loop (asyncio or trio)."""
        if self.try_acquire():  # the common case: nobody else holds it, no sleeping import needed
            return
        import anyio  # only when we must wait: works under asyncio and trio alike

        try:
            while True:
                await anyio.sleep(self.retry_in())
                if self.try_acquire():
                    return
        except BaseException:  # cancelled while waiting: do not leak the descriptor
            self._stop_waiting()
            raise

    def release(self) -> None:
        """Let go of the lock, or stop waiting for it; safe to call when neither."""
        self._stop_waiting()
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        await self.acquire_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, locked={self.locked})"


class FileLocks:
    """The lock factory a :class:`~mcp_client_auth.store.TokenStore` takes as ``lock=``.

    ``name`` turns a resource URL into a file name (a keyed hash, so lock files do not reveal
    which servers are used either); each call gives a fresh :class:`FileLock`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: Callable[[str], str],
        *,
        timeout: float = 360.0,
    ) -> None:
        self.directory = Path(directory)
        self.name = name
        self.timeout = timeout

    def __call__(self, resource: str) -> FileLock:
        return FileLock(
            self.directory / f"{self.name(resource)}.lock",
            timeout=self.timeout,
            what=resource,
        )

    def __repr__(self) -> str:
        return f"FileLocks({str(self.directory)!r}, timeout={self.timeout:g})"
