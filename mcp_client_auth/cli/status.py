"""``status [URL]``: the stored logins and where they are kept; never a token or a secret.

Exit 1 when a URL is given and that server has no usable login (so a script can ask "am I
logged in?"); with no URL, 0 whatever is stored. ``--json`` is for scripts and carries the
same facts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .context import Context, run_now
from .describe import client_kind, expiry_text, key_text, state
from .output import EXIT_FAILURE, EXIT_OK, PROG, Style, one_line

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path

    from .. import Protection, ServerRecord, TokenStore


def run_status(args: argparse.Namespace, context: Context) -> int:
    url: str | None = args.url
    folder = context.store_folder()
    now = time.time()
    store: TokenStore | None = None
    records: list[ServerRecord] = []
    # a file where the folder goes: opening it fails with what to do, as login would
    if context.store_exists() or (folder.exists() and not folder.is_dir()):
        store = context.open_store()
        records = load_records(store, url)
    usable = bool(records) and all(state(r, now, context)[1] for r in records)
    if args.json:
        import json

        document = {
            "store": {
                "location": str(folder),
                "exists": store is not None,
                "description": store.description if store else None,
                "protection": protection_json(store.protection) if store else None,
            },
            "servers": [record_json(r, now, context) for r in records],
        }
        context.streams.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        context.streams.stdout.write(status_text(store, folder, records, url, now, context))
    return EXIT_OK if url is None or usable else EXIT_FAILURE


def load_records(store: TokenStore, url: str | None) -> list[ServerRecord]:
    """The record of ``url``, else every record (one pass: each entry decrypted once)."""
    if url is None:
        return run_now(store.records)
    record = run_now(lambda: store.get(url))
    return [] if record is None else [record]


def protection_json(protection: Protection) -> dict[str, Any]:
    return {
        "kind": protection.kind,
        "where": protection.where,
        "note": protection.note or None,
        "in_keyring": protection.in_keyring,
        "description": str(protection),
    }


def record_json(record: ServerRecord, now: float, context: Context) -> dict[str, Any]:
    """A record as ``status --json`` shows it: everything but a token or a secret."""
    tokens, client = record.tokens, record.client
    access: dict[str, Any] = {"present": tokens is not None}
    if tokens is not None:
        access["type"] = "DPoP" if tokens.dpop_bound else "Bearer"
        access["expires_at"] = iso_utc(tokens.expires_at) if tokens.expires_at else None
        access["expires_in"] = (
            round(tokens.expires_at - now) if tokens.expires_at is not None else None
        )
        access["valid"] = tokens.is_valid(now)
    phrase, usable = state(record, now, context)
    return {
        "resource": record.resource,
        "issuer": record.issuer,
        "client_id": client.client_id if client else None,
        "client_kind": client.kind if client else None,
        "client_auth_method": client.token_endpoint_auth_method if client else None,
        "scopes": sorted(tokens.scopes) if tokens else [],
        "access_token": access,
        "refresh_token": {"present": bool(tokens and tokens.refresh_token)},
        "usable": usable,
        "state": phrase,
    }


def iso_utc(moment: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def status_text(
    store: TokenStore | None,
    folder: Path,
    records: Sequence[ServerRecord],
    url: str | None,
    now: float,
    context: Context,
) -> str:
    style = Style(context.streams.stdout, context.streams.env)
    lines: list[str] = []
    if store is None:
        lines.append(f"Store: {folder} (not created yet: nothing stored)")
    else:
        protection = store.protection
        shown = (
            style.warn(key_text(protection)) if protection.kind == "key file" else str(protection)
        )
        lines.append(f"Store: {store.description}")
        lines.append(f"Key:   {shown}")
    lines.append("")
    if not records:
        if url:
            lines.append(f"Not logged in to {url}; {context.login_hint(url)}")
        else:
            lines.append(f"No stored logins; `{PROG} login URL` adds one.")
    for record in records:
        tokens = record.tokens
        phrase, usable = state(record, now, context)
        lines.append(style.bold(record.resource))
        rows = [
            ("state", style.good(phrase) if usable else style.warn(phrase)),
            ("issuer", one_line(record.issuer or "(unknown)")),
            (
                "client id",
                f"{one_line(record.client.client_id)} ({client_kind(record)})"
                if record.client
                else "none",
            ),
            (
                "scopes",
                one_line(" ".join(sorted(tokens.scopes))) if tokens and tokens.scopes else "-",
            ),
            ("access token", expiry_text(tokens, now, style)),
            ("refresh token", "present" if tokens and tokens.refresh_token else "absent"),
        ]
        lines.extend(f"  {name:<15} {value}" for name, value in rows)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
