"""Text from a server, made safe to show: in a message, a log line or the terminal.

A server chooses every character of an error description, a URL or a name it sends. Shown as
it is, a control character drives the terminal or forges a log line, and a bidirectional or
invisible one makes text read other than it is. :func:`clean_text` shows each of them as a
visible escape (``\\x1b``, ``\\u202e``) and cuts out whatever the request just sent (a code, a
verifier, a client secret, an ID token), also when the server echoes it URL- or
base64-encoded or split by spaces and line breaks. :func:`visible_text` is the same rule
unbounded, :func:`visible_url` the form of a URL a person is asked to open (an international
host as punycode), and :func:`quoted` and :func:`bounded` keep a value in a message short.

Pure functions of their arguments: no I/O, so every hostile input is tested directly.
"""

from __future__ import annotations

import base64
import bisect
import functools
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

__all__ = [
    "bounded",
    "clean_text",
    "has_unsafe_characters",
    "quoted",
    "visible_text",
    "visible_url",
]

# What may hide inside a secret a server echoes: whitespace, controls (C0, DEL, C1), soft
# hyphen, bidirectional marks, overrides and isolates, zero-width characters, byte order mark.
_GAP = (
    r"\s\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    r"\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
)
_PIECE = 12  # this many characters of a secret in a row are an echo of it (about 70 bits)


# Compiled on first use, not on import: the negated class alone takes a millisecond, and a
# reconnect with ASCII URLs needs neither pattern (see has_unsafe_characters).
@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile(f"[{_GAP}]")


@functools.cache
def _visible_run() -> re.Pattern[str]:
    return re.compile(f"[^{_GAP}]+")


def has_unsafe_characters(text: str) -> bool:
    """Whether ``text`` holds whitespace, a control, bidi or invisible character, or anything
    Python does not call printable (a URL with one is refused: it can read other than it is)."""
    if text.isascii():  # of ASCII, only the space is printable and in the gap
        return " " in text or not text.isprintable()
    return not text.isprintable() or _unsafe().search(text) is not None


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible_text(text: str) -> str:
    """``text`` with every character that is not printable, or hides (see ``_GAP``), shown as
    a visible escape (``\\x1b``, ``\\u202e``); the plain space stays. Unbounded: for a URL
    printed for the user to open, which must not be cut."""
    if text.isprintable() and not has_unsafe_characters(text.replace(" ", "")):
        return text
    return "".join(
        char if char == " " or not has_unsafe_characters(char) else _escape(char) for char in text
    )


def visible_url(url: str) -> str:
    """``url`` as printed for a person to open: :func:`visible_text`, and an international
    host name in its ASCII (punycode) form, so a look-alike host (a Cyrillic ``а`` for a
    Latin ``a``) shows as the different name it is."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host.isascii():
            port = f":{parts.port}" if parts.port is not None else ""
            netloc = host.encode("idna").decode("ascii") + port
            url = urlunsplit(parts._replace(netloc=netloc))
    except (ValueError, UnicodeError):
        pass  # shown as it is, escapes and all
    return visible_text(url)


def _encodings(secret: str) -> set[str]:
    """The forms a server could echo ``secret`` in: as sent, URL-encoded, JSON-escaped, hex,
    base64 (standard and URL-safe, padded or not), and a JWT's parts one by one."""
    forms = {secret, quote_plus(secret), quote(secret, safe=""), json.dumps(secret)[1:-1]}
    forms |= {f.lower() for f in list(forms) if "%" in f}
    raw = secret.encode("utf-8", "surrogatepass")
    forms |= {raw.hex(), raw.hex().upper()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(raw).decode("ascii")
        forms |= {text, text.rstrip("=")}
        for shift in (1, 2):  # inside a longer base64 text (a whole form, say): what does
            # not depend on the bytes around it, at each of the other two alignments
            forms.add(encode(b"\0" * shift + raw).decode("ascii")[4:-4])
    if secret.count(".") >= 2:  # a JWT: its header, claims or signature alone
        forms |= {part for part in secret.split(".") if len(part) >= 16}
    return {form for form in forms if len(form) >= 4}


def _cut_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every echo of ``secrets``, whole or in part, replaced by ``…``.

    The search runs over the text's visible characters only, so a secret split by line breaks,
    spaces or zero-width characters is found too, and what it covers in the text (the hidden
    characters between included) is cut. Any :data:`_PIECE` characters in a row of a secret
    count as an echo: a server (or a message that quotes a bounded excerpt) may give back only
    part of one.
    """
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= 4:
            forms |= _encodings(secret)
    if not forms:
        return text
    runs = [(m.start(), m.group()) for m in _visible_run().finditer(text)]
    starts: list[int] = []  # where each run begins in the skeleton
    length = 0
    for _, run in runs:
        starts.append(length)
        length += len(run)
    skeleton = "".join(run for _, run in runs)

    def raw(index: int) -> int:
        run = bisect.bisect_right(starts, index) - 1
        return runs[run][0] + index - starts[run]

    spans: list[tuple[int, int]] = []  # in the skeleton, end exclusive
    pieces = {f[i : i + _PIECE] for f in forms for i in range(len(f) - _PIECE + 1)}
    if pieces:
        spans += [
            (i, i + _PIECE)
            for i in range(len(skeleton) - _PIECE + 1)
            if skeleton[i : i + _PIECE] in pieces
        ]
    for form in (f for f in forms if len(f) < _PIECE):
        found = skeleton.find(form)
        while found >= 0:
            spans.append((found, found + len(form)))
            found = skeleton.find(form, found + 1)
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    done = 0  # how much of the text is written or cut
    for start, end in spans:
        raw_start, raw_end = raw(start), raw(end - 1) + 1
        if raw_start >= done:  # a new cut; one that overlaps the last only extends it
            out += (text[done:raw_start], "…")
        done = max(done, raw_end)
    out.append(text[done:])
    return "".join(out)


def quoted(value: object, limit: int = 200) -> str:
    """``value`` in an error message as its ``repr``: quoted, so where it starts and ends is
    plain and no control, bidi or invisible character reaches a log or terminal unescaped; and
    at most ``limit`` characters, since a server chooses its length."""
    return bounded(repr(value), limit)


def bounded(text: str, limit: int = 200) -> str:
    """``text`` cut to at most ``limit`` characters for a message, unquoted: for text already
    known to be safe to show (a URL that passed the URL rules reads best as itself), whose
    length a server may still choose, and which every log line printing the error carries."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clean_text(text: str, limit: int = 300, *, secrets: Iterable[str] = ()) -> str:
    """``text`` from a server, safe to put into a message, a log line or the terminal.

    Every echo of ``secrets`` (what the request just sent) becomes ``…``; every control,
    bidirectional or invisible character becomes a visible escape (``\\x1b``, ``\\u202e``)
    rather than vanishing, so what is shown is what was sent; the result is at most ``limit``
    characters.
    """
    # at most 7 characters are shown for one (as an escape), so this is all that can be shown,
    # with room for a piece of a secret that starts just before the end
    text = text[: 8 * limit + 8 * _PIECE]
    sent = [secret for secret in secrets if secret]
    if sent:
        text = _cut_secrets(text, sent)
    text = visible_text(text).strip(" ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
