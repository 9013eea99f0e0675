"""``doctor``: check the versions, the keyring, the store, its key and its permissions.

Each check is one line on stdout, marked as fine, a warning, or a problem with the fix under
it; the exit status is 1 when there is a problem. ``doctor`` also looks at the folder's modes
with ``os``, because that is its job; everything else comes through the library's interface.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .context import Context, run_now, shell_quote
from .output import EXIT_FAILURE, EXIT_OK, PROG, Progress, Style, printable

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path

    from .. import KeyringProbe, Protection

KEY_ENV = "MCP_CLIENT_AUTH_KEY"  # the documented override of the store key (README)
LISTED = 10  # files named under one finding; the rest are counted


class Findings:
    """The doctor's report: one line per check, and whether anything needs fixing."""

    def __init__(self, style: Style) -> None:
        self.style = style
        self.lines: list[str] = []
        self.problems = 0
        self.warnings = 0

    def ok(self, text: str, *details: str) -> None:
        self._add(self.style.good("✓"), text, details)

    def warn(self, text: str, *details: str) -> None:
        self.warnings += 1
        self._add(self.style.warn("!"), text, details)

    def problem(self, text: str, *details: str) -> None:
        self.problems += 1
        self._add(self.style.bad("✗"), text, details)

    def _add(self, mark: str, text: str, details: Sequence[str]) -> None:
        self.lines.append(f"{mark} {printable(text)}")
        self.lines.extend(f"    {printable(d)}" for d in details if d)


def run_doctor(args: argparse.Namespace, context: Context) -> int:
    """Check everything the tool depends on; exit 1, saying what to do, when something is wrong."""
    from .. import StorageError, probe_keyring

    streams = context.streams
    found = Findings(Style(streams.stdout, streams.env))
    head = versions(found.style)

    progress = Progress(streams)
    progress.show("Trying the system keyring (set, get, delete)")
    try:
        probe = probe_keyring()
    finally:
        progress.clear()
    env_key = bool(streams.env.get(KEY_ENV))
    report_keyring(found, probe, env_key=env_key)

    report_orphan_key_files(found)
    folder = context.store_folder()
    if folder.exists() and not folder.is_dir():  # a login would refuse it: say so first
        found.problem(
            f"Store folder: {folder} is not a folder",
            "Fix: move it away; the first login makes the folder there (0700)",
        )
        return finish(head, found, context)
    if not context.store_exists():
        found.ok(
            f"Store folder: {folder} (not created yet; the first login creates it, 0700)",
        )
        report_future_key(found, probe, context, env_key=env_key)
        return finish(head, found, context)
    bad = bad_modes(folder)
    if bad:
        found.problem(
            f"Store folder: {folder}: permissions are wrong, so other users may read it",
            *bad[:LISTED],
            more(bad),
            f"Fix: chmod -R u=rwX,go= {shell_quote(str(folder))}  (folders 0700, files 0600)",
        )
    else:
        found.ok(f"Store folder: {folder} (folders 0700, files 0600, all yours)")
    try:
        store = context.open_store()
        records = run_now(store.records)
    except StorageError as exc:
        found.problem(f"The store cannot be opened: {exc}")
        return finish(head, found, context)
    report_key(found, store.protection, probe)
    unreadable = store.unreadable_files()
    summary = f"Entries: {len(records)} stored, {len(unreadable)} unreadable"
    if unreadable:
        found.problem(
            summary + " (set aside, not deleted; their servers ask for a new login)",
            *(str(p) for p in unreadable[:LISTED]),
            "Fix: once you no longer need them, delete those files.",
        )
    else:
        found.ok(summary)
    return finish(head, found, context)


def versions(style: Style) -> list[str]:
    """The heading: this tool's version, then Python's and each dependency's."""
    import platform

    mine = version("mcp-client-auth") or "unknown"
    rows = [
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("httpx", version("httpx") or "not installed"),
        ("httpx2", version("httpx2") or "not installed (optional)"),
        ("keyring", version("keyring") or "not installed"),
        ("cryptography", version("cryptography") or "not installed"),
        ("platformdirs", version("platformdirs") or "not installed"),
    ]
    return [style.bold(f"{PROG} {mine}")] + [f"  {n:<13} {v}" for n, v in rows] + [""]


def version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def more(listed: Sequence[object]) -> str:
    return f"...and {len(listed) - LISTED} more" if len(listed) > LISTED else ""


def bad_modes(folder: Path) -> list[str]:
    """Every folder under the store that is not 0700 and every file that is not 0600."""
    import stat

    found: list[str] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    for root, dirs, files in os.walk(folder):
        for name, want, is_dir in [(root, 0o700, True)] + [
            (os.path.join(root, f), 0o600, False) for f in files
        ]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found.append(f"{name} is a symbolic link")
            elif mode != want:
                kind = "folder" if is_dir else "file"
                found.append(f"{name}: {kind} mode {mode:o}, should be {want:o}")
            elif uid is not None and info.st_uid != uid:
                found.append(f"{name} belongs to another user (uid {info.st_uid})")
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return found


def report_keyring(found: Findings, probe: KeyringProbe, *, env_key: bool) -> None:
    text = f"Keyring: {probe.verdict} ({probe.backend}): {probe.reason}"
    if probe.works:
        found.ok(text)
    elif env_key:
        found.ok(text, "Not needed: the store key comes from the environment.")
    elif probe.verdict in ("locked", "slow"):
        found.warn(text, "Unlock the keyring (log in to the desktop session) and run doctor again.")
    else:
        found.warn(
            text,
            "Without it the store key is kept in a key file. To use a keyring on Linux, install "
            "and unlock a Secret Service (gnome-keyring or KeePassXC) in a D-Bus session; "
            "in containers and CI, set MCP_CLIENT_AUTH_KEY instead.",
        )


def report_orphan_key_files(found: Findings) -> None:
    """Key files whose store folder is gone (temporary stores of tests and demos, moved ones)."""
    from .. import StorageError, TokenStore

    try:
        orphans = TokenStore.orphan_key_files()
    except StorageError as exc:
        found.problem(f"Key files: {exc}")
        return
    if orphans:
        found.warn(
            f"Key files: {len(orphans)} left by store folders that no longer exist",
            *(str(p) for p in orphans[:LISTED]),
            more(orphans),
            f"Fix: `{PROG} logout --all` removes them (no store can use them again).",
        )


def report_future_key(
    found: Findings, probe: KeyringProbe, context: Context, *, env_key: bool
) -> None:
    """Where the key of a store not made yet will go: what the first login will do."""
    from .. import TokenStore

    if env_key:
        found.ok(f"Key: none yet; it will come from the {KEY_ENV} environment variable")
    elif probe.works:
        found.ok(f"Key: none yet; the first login makes one and keeps it in {probe.backend}")
    else:
        key_file = TokenStore.default_key_file(context.store_option)
        found.warn(
            f"Key: none yet; the first login makes one and keeps it in the key file "
            f"{key_file} (0600), protected only by file permissions",
        )


def report_key(found: Findings, protection: Protection, probe: KeyringProbe) -> None:
    if protection.kind == "key file":
        from pathlib import Path

        path = Path(protection.where)
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = None
        if mode is not None and mode != 0o600:
            found.problem(
                f"Key: in the key file {path} with mode {mode:o}: other users may read it",
                f"Fix: chmod 600 {shell_quote(str(path))}",
            )
            return
        found.warn(
            f"Key: in the key file {path} (0600), protected only by file permissions: anyone "
            "who can read that file can read the stored tokens",
            "With a working keyring, the next use of the store moves the key into it."
            if probe.works
            else "",
        )
    elif protection.kind == "keyring":
        found.ok(f"Key: in {protection.place}")
    else:
        found.ok(f"Key: {protection}")


def finish(head: list[str], found: Findings, context: Context) -> int:
    """Write the report and its verdict to stdout; exit 1 when there is a problem."""
    style = found.style
    if found.problems:
        verdict = style.bad(f"{found.problems} problem(s) found; see the fixes above.")
    elif found.warnings:
        verdict = style.warn("Works, with the warnings above.")
    else:
        verdict = style.good("Everything looks right.")
    context.streams.stdout.write("\n".join([*head, *found.lines, "", verdict]) + "\n")
    return EXIT_FAILURE if found.problems else EXIT_OK
