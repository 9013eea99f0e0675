"""The store's folders and files on disk: the user's own, and never reached through a link.

Why: whoever can write to a folder can replace what is in it. In a key folder they can plant a
key of their own, which the store would then use, so that every token stored afterwards is
readable by them. In a store or lock folder they can put a symbolic link where a lock or temp
file is about to be made, so that this user's process creates or changes a file wherever the
link points. ssh refuses a ``~/.ssh`` that others may write to for the same reason, and so do
we, with two rules that every place that touches the disk goes through:

* :func:`private_folder`: a folder the library uses must belong to this user and must not be
  writable by its group or by others; otherwise a :class:`StorageError` names the folder, its
  owner and mode, and the fix. Folders the library makes are 0700, whatever the umask. A folder
  that is readable by others is accepted (the entries are encrypted); ``doctor`` still advises
  0700.
* :func:`open_private`: a file in such a folder is opened with ``O_NOFOLLOW`` (a link in its
  place is refused, and what it points to is left untouched) and close-on-exec, so no child
  process inherits it.

Windows has neither POSIX owners and modes nor ``O_NOFOLLOW``: there folders are made and used
as they are (the user's profile folders are private by their access lists).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from ..errors import StorageError

__all__ = [
    "check_private_folder",
    "open_private",
    "private_folder",
    "read_private_file",
    "storage_error",
    "write_file_atomically",
]

_POSIX = os.name == "posix"
_OPEN_FLAGS = (
    getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def private_folder(path: Path, *, what: str) -> None:
    """Make ``path`` and its missing parents (0700), or check the existing ``path``.

    ``what`` names the folder for the error ("token store folder", "key folder", ...). Raises
    :class:`StorageError` for a folder that is not this user's own or that others may write
    to, and ``OSError`` when a folder cannot be made (the caller says what it was for).
    """
    missing: list[Path] = []
    here = path
    while True:
        try:
            info = os.stat(here)
        except FileNotFoundError:
            if here.parent == here:
                raise
            missing.append(here)
            here = here.parent
            continue
        break
    if not missing:
        _refuse_unless_private(path, info, what)
        return
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile, by another process: judge it as found
            if folder == path:
                check_private_folder(path, what=what)
            continue
        if _POSIX:
            os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask


def check_private_folder(path: Path, *, what: str) -> None:
    """Refuse (:class:`StorageError`) an existing folder not safely this user's own.

    A folder that does not exist passes: there is nothing in it to trust.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    _refuse_unless_private(path, info, what)


def _refuse_unless_private(path: Path, info: os.stat_result, what: str) -> None:
    if not stat.S_ISDIR(info.st_mode):
        raise StorageError(
            f"the {what} {path} is not a folder; move it away so that a folder can be made there"
        )
    if not _POSIX:
        return
    me = os.geteuid()
    mode = stat.S_IMODE(info.st_mode)
    foreign = info.st_uid != me
    writable = bool(mode & _WRITABLE_BY_OTHERS)
    if not foreign and not writable:
        return
    import shlex

    quoted = shlex.quote(str(path))
    owner = f"uid {info.st_uid}{_user_name(info.st_uid)}"
    problems = []
    if foreign:
        problems.append(f"it belongs to another user, not to you (uid {me})")
    if writable:
        problems.append("users other than its owner may write to it")
    if foreign:
        fix = (
            f"use a folder of your own: move {quoted} away (the library makes a new one), or, "
            f"if it should be yours, as root: chown {me} {quoted} && chmod 700 {quoted}"
        )
    else:
        fix = f"chmod 700 {quoted}"
    raise StorageError(
        f"refusing the {what} {path} (owner {owner}, mode {mode:o}): {', and '.join(problems)}. "
        "Whoever controls a folder can replace the files in it (a key, a lock, a token), so it "
        f"must be yours and writable by you alone, as ssh requires of ~/.ssh. Fix: {fix}"
    )


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f" ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return ""


def open_private(path: str | os.PathLike[str], flags: int, *, what: str) -> int:
    """``os.open(path, flags, 0o600)`` for a file in one of the library's own folders.

    Never through a symbolic link: a link in the file's place is a :class:`StorageError`
    naming it (its target is not opened, created or changed); other failures are the
    ``OSError`` itself, for the caller to describe. ``what`` names the file for that error.
    """
    try:
        return os.open(path, flags | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if not os.path.islink(path):
            raise
        import shlex

        try:
            target = f" (to {os.readlink(path)})"
        except OSError:
            target = ""
        raise StorageError(
            f"refusing the {what} {os.fspath(path)}: it is a symbolic link{target}, "
            "and the library never follows links in its own folders: whoever made it wants "
            f"this program to write or read elsewhere. Fix: rm {shlex.quote(os.fspath(path))}, "
            "and check who else can write to that folder"
        ) from exc


def read_private_file(path: str | Path, *, what: str = "token store entry") -> bytes:
    """The bytes of a small file in one of our folders: plain ``os.read`` calls, no buffered
    file object, and never through a symbolic link (see :func:`open_private`).

    About half the cost of ``open(path, "rb").read()``, which counts when a listing reads every
    entry of a store.
    """
    fd = open_private(path, os.O_RDONLY, what=what)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def storage_error(action: str, path: Path, exc: OSError, *, folder: bool = False) -> StorageError:
    """An error a person can act on: what failed, where, and what to do about it.

    ``path`` is the file (or, with ``folder``, the folder) the action was on. Every write goes
    through a temp file, so when one fails the stored entries are still what they were.
    """
    reason = exc.strerror or str(exc)
    where = path if folder else path.parent
    writing = action not in ("read", "list")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some disk space (or raise the disk quota) and try again"
    elif exc.errno == errno.EROFS:
        hint = (
            "the file system is read-only: point MCP_CLIENT_AUTH_HOME at a writable folder, "
            "or pass store=TokenStore.memory()"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM):
        access = "read and write" if writing else "read"
        hint = f"check that this user owns {where} and may {access} it (it should be 0700)"
    else:
        hint = f"check the folder {where} and its disk"
    tail = " Stored entries are intact." if writing else ""
    return StorageError(f"could not {action} {path}: {reason}; {hint}.{tail}")


def write_file_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, ``os.replace``.

    A crash at any point leaves either the old file or the new one. The file is 0600. The
    folder is fsynced after the rename (``sync_dir``) so that the new entry also survives a
    power cut: a rotated refresh token that is lost makes the user log in again.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, what="temp file")
    except OSError as exc:
        raise storage_error("create a file in", path.parent, exc, folder=True) from exc
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise storage_error("write", path, exc) from exc
    if sync_dir:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder; NTFS journals the rename itself
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
