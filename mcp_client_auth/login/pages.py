"""The pages the loopback listener shows in the user's browser.

Small, self-contained HTML: no external resources (nothing to fetch, nothing to leak the
callback URL to through a Referer), plain words, and never the authorization code or a token.
A tiny inline script replaces the address-bar URL with the bare callback path, so the code does
not linger in the browser's history; the Content-Security-Policy allows exactly that script and
that stylesheet by hash, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "Page",
    "bad_request_page",
    "error_page",
    "finished_page",
    "method_not_allowed_page",
    "not_found_page",
    "refused_page",
    "state_mismatch_page",
    "success_page",
]

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;"
    "background:#f6f7f9;color:#1f2328}"
    "main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
    "h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.5;margin:.6rem 0}"
    ".ok h1{color:#1a7f37}.bad h1{color:#cf222e}"
    "code{background:#f0f1f3;padding:.1rem .3rem;border-radius:4px}"
)
_SCRIPT = "history.replaceState(null,'',location.pathname);"


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(_STYLE)}; script-src {_sha256(_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Page:
    """A response body with its HTTP status; ``body`` is UTF-8 HTML."""

    __slots__ = ("body", "reason", "status")

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode()


def _render(status: int, reason: str, tone: str, title: str, paragraphs: list[str]) -> Page:
    """``paragraphs`` are HTML already escaped by the caller."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main class="{tone}"><h1>{html.escape(title)}</h1>{body}</main>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
    return Page(status, reason, document.encode())


def success_page() -> Page:
    return _render(
        200,
        "OK",
        "ok",
        "Signed in",
        [
            "Your browser has passed the sign-in back to the application.",
            "You can close this tab and return to where you started.",
        ],
    )


def error_page(error: str, description: str | None) -> Page:
    """The authorization server said no (``access_denied``, ``invalid_scope``, ...)."""
    if error == "access_denied":
        lead = "The sign-in was cancelled or refused, so the application was not given access."
    else:
        lead = "The authorization server could not complete the sign-in."
    said = f"It said: <code>{html.escape(error)}</code>"
    if description:
        said += f" ({html.escape(description)})"
    return _render(
        400,
        "Bad Request",
        "bad",
        "Sign-in did not complete",
        [
            html.escape(lead),
            said + ".",
            "You can close this tab; the application shows what to do next.",
        ],
    )


def refused_page() -> Page:
    """The answer belongs to this login, but the application refuses it: it names another
    authorization server as its issuer, or none where one was promised (RFC 9207). The browser
    must not say "signed in"; the page quotes nothing from the answer (which a mix-up attacker
    wrote), and the application's error gives the details."""
    return _render(
        400,
        "Bad Request",
        "bad",
        "Sign-in refused",
        [
            "The application refused the answer that came back: it does not show that it comes "
            "from the authorization server this sign-in started with, so it was not used.",
            "You can close this tab; the application shows what happened and what to do next.",
        ],
    )


def state_mismatch_page() -> Page:
    return _render(
        400,
        "Bad Request",
        "bad",
        "This sign-in link is not the current one",
        [
            "This answer does not belong to the sign-in the application is waiting for: it may "
            "come from an older attempt or from another site.",
            "It was ignored. If you are signing in, finish in the tab that the application "
            "opened, or start again.",
        ],
    )


def bad_request_page(reason: str) -> Page:
    return _render(
        400,
        "Bad Request",
        "bad",
        "Sign-in answer not understood",
        [
            html.escape(reason),
            "It was ignored; the application is still waiting for the sign-in.",
        ],
    )


def finished_page() -> Page:
    return _render(
        409,
        "Conflict",
        "bad",
        "Sign-in already finished",
        [
            "The application already received an answer for this sign-in; this one was ignored.",
            "You can close this tab.",
        ],
    )


def not_found_page() -> Page:
    return _render(
        404,
        "Not Found",
        "bad",
        "Not found",
        [
            "This address is only used to receive a sign-in answer.",
        ],
    )


def method_not_allowed_page() -> Page:
    return _render(
        405,
        "Method Not Allowed",
        "bad",
        "Not supported",
        [
            "This address only accepts the browser's return from a sign-in.",
        ],
    )
