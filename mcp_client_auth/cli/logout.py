"""``logout URL`` / ``logout --all``: revoke where the server allows, forget here, say which.

Revocation is RFC 7009's: the refresh token first (on most servers that ends the grant), then
the access token. What the server would not or could not revoke is named, with how long it
stays valid; the tokens are forgotten here whatever the server answered, since that is what
the user asked for first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .context import Context, run, run_now
from .describe import relative
from .output import EXIT_FAILURE, EXIT_OK, Progress, Reporter

if TYPE_CHECKING:
    import argparse

    from .. import LogoutResult, ServerRecord, TokenStore


def run_logout(args: argparse.Namespace, context: Context) -> int:
    report = Reporter(context.streams)
    if args.all:
        remove_orphan_key_files(report)
    if not context.store_exists():
        report.info("Nothing stored, so nothing to log out of.")
        return EXIT_OK
    store = context.open_store()
    if args.all:
        # each record is read again when its turn comes: earlier logouts take a while
        urls = [record.resource for record in run_now(store.records)]
        if not urls:
            report.info("Nothing stored, so nothing to log out of.")
            return EXIT_OK
    else:
        urls = [args.url]
    from .. import MCPAuthError

    failed = False
    for url in urls:
        try:
            failed = not logout_one(url, store, args.forget_client, context, report) or failed
        except (MCPAuthError, OSError) as exc:
            if not args.all:
                raise
            report.error(f"{url}: {exc}")  # and go on with the other servers
            failed = True
    return EXIT_FAILURE if failed else EXIT_OK


def remove_orphan_key_files(report: Reporter) -> None:
    """``logout --all`` forgets everything: also the key files no store folder is left for."""
    from .. import TokenStore

    removed = TokenStore.remove_orphan_key_files()
    if removed:
        files = "key file" if len(removed) == 1 else "key files"
        report.success(f"Removed {len(removed)} {files} of store folders that no longer exist.")


def logout_one(
    url: str, store: TokenStore, forget_client: bool, context: Context, report: Reporter
) -> bool:
    """Log out of one server; False when something was left undone (said on stderr)."""
    from .. import MCPAuthError, OAuthClientProvider

    before = run_now(lambda: store.get(url))
    if before is None:
        report.info(f"Not logged in to {url}; nothing to do.")
        return True
    provider = OAuthClientProvider(
        url, store=store, interactive=False, allow_insecure_http=context.allow_http
    )
    progress = Progress(context.streams)
    progress.show(f"Logging out of {url}")
    failure: str | None = None
    try:
        result = run(provider.alogout(revoke=True, forget_client=forget_client))
    except MCPAuthError as exc:
        # Revocation could not be tried at all (a revocation endpoint on plain http, say; an
        # unreachable one is in result.errors): the tokens are still forgotten here.
        failure = str(exc)
        result = run(provider.alogout(revoke=False, forget_client=forget_client))
    finally:
        progress.clear()
    return report_logout(url, before, result, forget_client, failure, report)


def report_logout(
    url: str,
    before: ServerRecord,
    result: LogoutResult,
    forget_client: bool,
    failure: str | None,
    report: Reporter,
) -> bool:
    """Say what was revoked at the server and what was only forgotten here; False on failure.

    A token the server answers ``unsupported_token_type`` for (RFC 7009 2.2.1: it cannot
    revoke that kind, typically a self-contained JWT access token) is not a failure: nothing
    more can be done but wait for it to expire, so the message says how long that is.
    """
    tokens = before.tokens
    dropped = "; dropped the client registration" if forget_client else ""
    if tokens is None:
        report.success(f"Already logged out of {url}{dropped or '; nothing to revoke'}.")
        return True
    names = {"refresh_token": "the refresh token", "access_token": "the access token"}
    held = ["refresh_token"] if tokens.refresh_token else []
    unrevoked = [kind for kind in [*held, "access_token"] if kind not in result.revoked]
    cannot = [e.split(":", 1)[0] for e in result.errors if "(unsupported_token_type)" in e]
    problems = [e for e in result.errors if "(unsupported_token_type)" not in e]
    problems += [failure] if failure else []
    still = " and ".join(names.get(kind, kind) for kind in unrevoked)
    until = "until it expires" if unrevoked == ["access_token"] else "until they expire"
    if tokens.expires_at is not None and tokens.expires_at > time.time():
        until += f" (the access token {relative(tokens.expires_at - time.time())})"
    parts: list[str] = []
    if result.revoked:
        revoked = " and ".join(names.get(kind, kind) for kind in result.revoked)
        parts.append(f"the authorization server revoked {revoked}")
    if cannot:
        parts.append(
            f"it cannot revoke {' and '.join(names.get(k, k) for k in cannot)} "
            "(unsupported_token_type)"
        )
    if problems:
        # the server answered and said no, or the revocation could not be sent at all
        refused = not failure and all(": HTTP " in p for p in problems)
        what = "the server's revocation endpoint refused" if refused else "revoking failed"
        report.warning(
            f"Logged out of {url} here{dropped}, but {what} ({'; '.join(problems)})"
            + "".join(f"; {part}" for part in parts)
            + f". Still valid on the server {until}: {still}."
        )
        return False
    if not result.revocation_supported:
        parts.append("the authorization server has no revocation endpoint, so nothing was revoked")
    tail = f"; still valid on the server {until}: {still}" if unrevoked else ""
    report.success(
        f"Logged out of {url}: {'; '.join(parts)}{tail}; forgot the tokens here{dropped}."
    )
    return True
