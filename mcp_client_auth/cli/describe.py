"""How a login is described to a person: its state, its client, its expiry, its key.

Shared by ``login`` (what was just stored), ``status`` (what is stored) and ``logout`` (how long
an unrevoked token stays valid), so the three say the same thing the same way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .output import PROG, Style, one_line

if TYPE_CHECKING:
    from .. import Protection, ServerRecord, TokenSet
    from .context import Context


def key_text(protection: Protection) -> str:
    """Where the store key is, in one line; a key file says only that ``doctor`` knows more
    (why no keyring works, and what to do), not the whole story in every command."""
    if protection.kind == "key file":
        return (
            f"in {protection.place}, protected only by file permissions (no working system "
            f"keyring; `{PROG} doctor` says more)"
        )
    return str(protection)


def client_kind(record: ServerRecord) -> str:
    client = record.client
    if client is None:
        return "none"
    kind = {
        "dynamic": "dynamic registration",
        "pre-registered": "pre-registered",
        "metadata-document": "client ID metadata document",
    }.get(client.kind, client.kind)
    public = client.token_endpoint_auth_method == "none"
    return one_line(f"{kind}, {'public client' if public else client.token_endpoint_auth_method}")


def relative(seconds: float) -> str:
    """``in 59 min`` / ``3 min ago``: how far off a moment is, as a person says it."""
    span = abs(seconds)
    if span < 90:
        text = f"{int(span)} s"
    elif span < 90 * 60:
        text = f"{round(span / 60)} min"
    elif span < 48 * 3600:
        hours, rest = divmod(int(span), 3600)
        text = f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    else:
        text = f"{round(span / 86400)} days"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def absolute(moment: float) -> str:
    # time, not datetime: the same text, and `status` prints one per server
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(moment))


def expiry_text(tokens: TokenSet | None, now: float, style: Style) -> str:
    if tokens is None:
        return style.warn("none (logged out)")
    kind = "DPoP-bound" if tokens.dpop_bound else "bearer"
    if tokens.expires_at is None:
        return f"{style.good('valid')} {kind} (the server gave no expiry)"
    left = tokens.expires_at - now
    when = f"({absolute(tokens.expires_at)})"
    if left > 0:
        return f"{style.good('valid')} {kind}, expires {relative(left)} {when}"
    return f"{style.warn('expired')} {kind}, {relative(left)} {when}"


def state(record: ServerRecord, now: float, context: Context) -> tuple[str, bool]:
    """One phrase on what the next use of this login does, and whether it works unattended."""
    tokens = record.tokens
    if tokens is None:
        return "logged out: " + context.login_hint(record.resource, record), False
    if tokens.is_valid(now):
        return "logged in", True
    if tokens.refresh_token:
        return "logged in (the access token is refreshed on next use)", True
    return "expired: " + context.login_hint(record.resource, record), False
