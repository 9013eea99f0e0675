"""Cross-process locks: one lock file per resource, beside the store.

Why a file lock: two processes that refresh the same token at once each send the same refresh
token; a server that rotates refresh tokens then sees one reused and revokes the whole grant.
Holding this lock around read-refresh-write makes the second process wait and re-read instead.

How: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. Both are released by the
operating system when the holder exits or dies, so a lock file is never stale and never needs
deleting (deleting lock files is itself a race, so they stay). The lock is taken without
blocking; while another process holds it we poll with a growing back-off (1 ms doubling to
100 ms), which keeps the event loop free and lets a timeout end the wait with a clear error.
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

__all__ = ["FileLock", "FileLocks"]

_FIRST_DELAY = 0.001
_MAX_DELAY = 0.1

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
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

    def _try_lock(fd: int) -> bool:
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

    def _timed_out(self, fd: int) -> StorageError:
        os.close(fd)
        return StorageError(
            f"waited {self.timeout:g} s for the lock on {self.what} ({self.path}): another "
            "process holds it, most likely a login waiting for the browser or a slow refresh. "
            "Finish or stop that process and try again (the lock is freed when it exits)."
        )

    def acquire(self) -> None:
        """Block this thread until the lock is held (for sync callers and set-up code)."""
        fd = self._open()
        deadline = time.monotonic() + self.timeout
        delay = _FIRST_DELAY
        try:
            while not _try_lock(fd):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(fd)
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, _MAX_DELAY)
        except StorageError:
            raise
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    async def acquire_async(self) -> None:
        """Wait for the lock without blocking the event loop (asyncio or trio)."""
        fd = self._open()
        if _try_lock(fd):  # the common case: nobody else holds it, no sleeping import needed
            self._fd = fd
            return
        import anyio  # only when we must wait: works under asyncio and trio alike

        deadline = time.monotonic() + self.timeout
        delay = _FIRST_DELAY
        try:
            while not _try_lock(fd):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(fd)
                await anyio.sleep(min(delay, remaining))
                delay = min(delay * 2, _MAX_DELAY)
        except StorageError:
            raise
        except BaseException:  # cancelled while waiting: do not leak the descriptor
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
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
