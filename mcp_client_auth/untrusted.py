"""What a server sends, made safe before it is used: JSON, numbers, text and error answers.

Everything a protected resource, an authorization server or an identity provider sends is
hostile until checked, and each check has one helper here that every module uses:

- :func:`parse_json`: a body is a JSON object, without ``NaN`` or ``Infinity`` (which
  :func:`json.loads` accepts: a NaN deadline compares false with everything, so a wait never
  ends), without a number that overflows to infinity (``1e999``), bounded in size and depth;
  anything else is the caller's typed error.
- :func:`server_number`: a number is finite and in its range before it is used (a lifetime, an
  interval, an expiry), and never a boolean; :func:`server_nonce`: a DPoP nonce is one before
  it rides on every later proof.
- :func:`clean_text`: text put into a message, a log line or the terminal shows every control,
  bidirectional and invisible character as a visible escape (``\\x1b``, ``\\u202e``), so a
  server can neither drive the terminal, forge a log line, nor make text read other than it is;
  and whatever the request just sent (a code, a verifier, a client secret, an ID token) is cut
  out of it, also when echoed URL- or base64-encoded or split by spaces and line breaks.
  :func:`visible_text` is the same rule unbounded (and :func:`visible_url`, for a URL a person
  is asked to open, also shows an international host as punycode); :func:`quoted` shows a
  value quoted, as Python writes it, and bounded.
- :func:`read_error`: a server's error answer (RFC 6749 5.2 and the like) read once, through
  the rules above, into the typed error the caller names.

Pure functions of their arguments: no I/O, so every hostile input is tested directly.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from .errors import AuthorizationError, DiscoveryError, TokenError

if TYPE_CHECKING:
    from .effects import HttpRequest, HttpResponse

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "SECRET_FIELDS",
    "ErrorAnswer",
    "answer_text",
    "clean_text",
    "has_unsafe_characters",
    "header_secrets",
    "json_type",
    "parse_json",
    "quoted",
    "read_error",
    "sent_secrets",
    "server_nonce",
    "server_number",
    "visible_text",
    "visible_url",
]

#: The largest JSON body read from a server. Real documents and answers are a few KiB; a cap
#: stops a hostile or broken server from making the client buffer and parse without bound.
MAX_DOCUMENT_BYTES = 1024 * 1024

#: The deepest nesting of arrays and objects accepted. Real metadata and token answers nest
#: three or four levels; a body of ``[[[[...`` is refused as a typed error, not a RecursionError.
MAX_JSON_DEPTH = 32

#: Form and JSON fields whose values are secrets: never shown again, even when a server echoes
#: them back.
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "actor_token",
        "assertion",
        "client_assertion",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "id_token",
        "refresh_token",
        "registration_access_token",
        "subject_token",
        "token",
    }
)

E = TypeVar("E", bound=Exception)

# -- JSON ----------------------------------------------------------------------------------------


def json_type(value: object) -> str:
    """What a JSON value is, for a message: ``an array``, ``null``, ``a string``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large to be finite")
    return value


def _too_deep(document: object, limit: int) -> bool:
    """Whether ``document`` nests arrays and objects more than ``limit`` levels (no recursion)."""
    level: list[object] = [document]
    for _ in range(limit):
        below: list[object] = []
        for value in level:
            if isinstance(value, dict):
                below.extend(v for v in value.values() if isinstance(v, (dict, list)))
            elif isinstance(value, list):
                below.extend(v for v in value if isinstance(v, (dict, list)))
        if not below:
            return False
        level = below
    return True


# A surrogate can only come from a \u escape (UTF-8 text has none); a pair of them is one
# character once parsed, so what is left is a lone one, which no UTF-8 file or log can hold.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(document: object) -> bool:
    pending: list[object] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def parse_json(
    body: bytes,
    *,
    what: str,
    url: str,
    error: type[E] = DiscoveryError,  # type: ignore[assignment]
    limit: int = MAX_DOCUMENT_BYTES,
) -> dict[str, Any]:
    """A server's body as a JSON object, or ``error`` naming ``what`` and ``url``.

    Refused: more than ``limit`` bytes (checked before decoding), text that is not UTF-8 (a
    byte order mark is allowed, as RFC 8259 lets a parser ignore it), ``NaN``, ``Infinity``,
    numbers that overflow a float, integers past Python's digit limit, nesting deeper than
    :data:`MAX_JSON_DEPTH`, a lone surrogate (``"\\ud800"``: I-JSON, RFC 7493, forbids it, and
    no UTF-8 store or log can hold it), and any JSON value that is not an object.
    """
    if len(body) > limit:
        raise error(f"the {what} at {url} is larger than {limit} bytes")
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"the {what} at {url} is not UTF-8 text, so not valid JSON") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise error(f"the {what} at {url} is not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise error(f"the {what} at {url} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise error(f"the {what} at {url} must be a JSON object, got {json_type(document)}")
    if _too_deep(document, MAX_JSON_DEPTH):
        raise error(
            f"the {what} at {url} is not valid JSON (nested deeper than {MAX_JSON_DEPTH} levels)"
        )
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(document):
        raise error(f"the {what} at {url} is not valid JSON (a lone surrogate in a string)")
    return document


# -- numbers -------------------------------------------------------------------------------------

_MAX_DIGITS = 30  # a decimal string longer than this is no lifetime or interval


def server_number(
    value: object,
    *,
    name: str,
    low: float,
    high: float,
    cap: bool = False,
    what: str,
    error: type[E],
) -> float:
    """``value`` from a server as a finite float in ``[low, high]``, or ``error``.

    A JSON number, or a string of ASCII digits (some servers send ``"3600"``); never a boolean.
    ``NaN``, an infinity and an integer too large for a float are refused, and so is a value
    below ``low``; one above ``high`` is refused too, or becomes ``high`` with ``cap`` (a
    lifetime of ten years is kept as the longest this client uses). ``-0`` is ``0``.
    """
    number: float
    if isinstance(value, str):
        text = value.strip()
        if not (text and text.isascii() and text.isdigit()):
            raise error(f"{what} has a non-numeric {name}")
        if len(text) > _MAX_DIGITS:
            raise error(f"{what} has a {name} too large to be a number")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{what} has a non-numeric {name}")
    try:
        number = float(value)
    except OverflowError:
        raise error(f"{what} has a {name} too large to be a number") from None
    if math.isnan(number):
        raise error(f"{what} has a {name} that is not a number (NaN)")
    if math.isinf(number):
        raise error(f"{what} has a {name} too large to be a number")
    number += 0.0  # -0.0 becomes 0.0
    if number < low:
        below = "negative" if low == 0 else f"below {low:g}:"
        raise error(f"{what} has a {below} {name}")
    if number > high:
        if cap:
            return float(high)
        raise error(f"{what} has a {name} of {number:g}, more than the {high:g} allowed")
    return number


# -- values a server hands back to be sent again ----------------------------------------------

MAX_NONCE = 512  # characters of a DPoP nonce: real ones are a few dozen
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def server_nonce(value: str | None) -> str | None:
    """A DPoP nonce (RFC 9449 8) fit to put into every later proof, else ``None`` (ignored).

    RFC 9449 makes it ``1*NQCHAR`` (visible ASCII but ``"`` and ``\\``); a longer one than
    :data:`MAX_NONCE` would ride on every request to that server.
    """
    if value and len(value) <= MAX_NONCE and _NQCHAR.fullmatch(value):
        return value
    return None


# -- text ----------------------------------------------------------------------------------------

# What may hide inside a secret a server echoes: whitespace, controls (C0, DEL, C1), soft
# hyphen, bidirectional marks, overrides and isolates, zero-width characters, byte order mark.
_GAP = (
    r"\s\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    r"\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
)
_VISIBLE_RUN = re.compile(f"[^{_GAP}]+")
_UNSAFE = re.compile(f"[{_GAP}]")
_PIECE = 12  # this many characters of a secret in a row are an echo of it (about 70 bits)


def has_unsafe_characters(text: str) -> bool:
    """Whether ``text`` holds whitespace, a control, bidi or invisible character, or anything
    Python does not call printable (a URL with one is refused: it can read other than it is)."""
    return not text.isprintable() or _UNSAFE.search(text) is not None


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
    if text.isprintable() and not _UNSAFE.search(text.replace(" ", "")):
        return text
    return "".join(
        char if char == " " or (char.isprintable() and not _UNSAFE.match(char)) else _escape(char)
        for char in text
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
    runs = [(m.start(), m.group()) for m in _VISIBLE_RUN.finditer(text)]
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
    text = repr(value)
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


# -- what a request sent, and a server's error answer ------------------------------------------


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The credentials in request headers: ``Authorization`` (whole, and its credentials
    without the scheme) and a ``DPoP`` proof."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in ("authorization", "dpop") and value:
            scheme, _, credentials = value.partition(" ")
            found += (value, credentials)
            if scheme.lower() == "basic":
                found += _basic_secrets(credentials)
    return found


def _basic_secrets(credentials: str) -> list[str]:
    """What HTTP Basic credentials carry in clear (RFC 6749 2.3.1: ``id:secret``, each
    form-encoded), which a server may echo decoded."""
    try:
        pair = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return []
    secret = pair.partition(":")[2]
    return [pair, secret, unquote_plus(secret)]


def sent_secrets(request: HttpRequest | None) -> tuple[str, ...]:
    """Every secret ``request`` carried: the values of :data:`SECRET_FIELDS` in its form or
    JSON body, and its credentials headers (``Authorization``, ``DPoP``)."""
    if request is None:
        return ()
    found = header_secrets(request.headers)
    body = request.body or b""
    fields: Iterable[tuple[str, Any]] = ()
    content_type = next(
        (v for k, v in request.headers.items() if k.lower() == "content-type"), ""
    ).lower()
    try:
        if "json" in content_type:
            document = json.loads(body)
            fields = document.items() if isinstance(document, dict) else ()
        elif body:
            fields = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    except (ValueError, UnicodeDecodeError):
        fields = ()
    found += [v for k, v in fields if k in SECRET_FIELDS and isinstance(v, str)]
    return tuple(s for s in dict.fromkeys(found) if s)


class ErrorAnswer(NamedTuple):
    """A server's error answer, read by :func:`read_error`: cleaned, what was sent cut out."""

    status: int
    error: str | None
    description: str | None

    @property
    def detail(self) -> str:
        """``: error (description)``, or nothing when the server said neither."""
        text = f": {self.error}" if self.error else ""
        return text + (f" ({self.description})" if self.description else "")

    def as_error(self, kind: type[E], message: str) -> E:
        """``kind(message)``, carrying the server's ``error`` and ``error_description`` where
        ``kind`` has room for them."""
        if issubclass(kind, TokenError):
            return kind(
                message, error=self.error, description=self.description, status_code=self.status
            )
        if issubclass(kind, AuthorizationError):
            return kind(message, error=self.error, description=self.description)
        return kind(message)


def read_error(response: HttpResponse) -> ErrorAnswer:
    """The ``error`` and ``error_description`` of a server's answer, safe to show.

    The one reader of every error answer (resource, authorization server, identity provider,
    registration, revocation, device authorization): the body is parsed by the strict rules of
    :func:`parse_json` (an answer that breaks them simply says nothing), and both texts go
    through :func:`clean_text` with the secrets of the request that was answered.
    """
    try:
        answer: Mapping[str, Any] = parse_json(
            response.body, what="error answer", url=response.url, error=ValueError
        )
    except ValueError:
        answer = {}
    secrets = sent_secrets(getattr(response, "request", None))
    error = answer.get("error")
    description = answer.get("error_description")
    return ErrorAnswer(
        response.status_code,
        (clean_text(error, 100, secrets=secrets) or None) if isinstance(error, str) else None,
        (clean_text(description, 300, secrets=secrets) or None)
        if isinstance(description, str)
        else None,
    )


def answer_text(response: HttpResponse, value: object, limit: int = 100) -> str:
    """Text taken from ``response`` (a value, or a reason that quotes one) for a message:
    cleaned, and what the request sent cut out."""
    secrets = sent_secrets(getattr(response, "request", None))
    return clean_text(str(value), limit, secrets=secrets)
