"""A server's JSON body and the numbers in it, checked before anything uses them.

:func:`json.loads` accepts what no server should send and what breaks the client later:
``NaN`` and ``Infinity`` (a NaN deadline compares false with everything, so a wait never
ends), a number that overflows to infinity (``1e999``), nesting deep enough for a
RecursionError, lone surrogates that no UTF-8 store or log can hold. :func:`parse_json` refuses
all of them as the caller's typed error; :func:`server_number` keeps a lifetime or an interval
finite and in range; :func:`server_nonce` accepts a DPoP nonce only in the form RFC 9449 gives
it, before it rides on every later proof.

Pure functions of their arguments: no I/O, so every hostile input is tested directly.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, NoReturn, TypeVar

from .errors import DiscoveryError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NONCE",
    "json_type",
    "parse_json",
    "server_nonce",
    "server_number",
]

#: The largest JSON body read from a server. Real documents and answers are a few KiB; a cap
#: stops a hostile or broken server from making the client buffer and parse without bound.
MAX_DOCUMENT_BYTES = 1024 * 1024

#: The deepest nesting of arrays and objects accepted. Real metadata and token answers nest
#: three or four levels; a body of ``[[[[...`` is refused as a typed error, not a RecursionError.
MAX_JSON_DEPTH = 32

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


@functools.cache  # compiled when an escape is seen, not on import (a third of a millisecond)
def _surrogate() -> re.Pattern[str]:
    return re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(document: object) -> bool:
    pending: list[object] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _surrogate().search(value):
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
