"""Which callback is this login's answer: one rule for every way an answer arrives.

An answer reaches the login three ways: a request to BrowserLogin's loopback listener, an
address pasted into PasteLogin, or the URL a login callable returns. Any local process, and any
web page the user visits, can send a request to 127.0.0.1; only the authorization server knows
the login's ``state``. So a callback counts only when it carries this login's ``state``, exactly
once, and that holds for an ``error=`` answer as much as for a code: otherwise anyone could end a
pending login with ``GET /callback?error=access_denied``. RFC 6749 section 4.1.2.1 has the server
send the state back with its errors too, so a real server's refusal still ends the login.

What is not this login's answer is a :class:`ForeignCallback`: the listener answers it with 400
and the paste-back asks again (the login goes on waiting); the flow, which gets one answer from a
login callable, ends the login with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import AuthorizationError
from .server_text import clean_text

__all__ = ["ForeignCallback", "callback_parameters", "check_callback"]


class ForeignCallback(AuthorizationError):
    """A callback that is not this login's answer: its ``state`` is missing or another one.

    ``missing`` tells the two apart (for a message that says what to paste instead).
    """

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def callback_parameters(query: str, *, state: str) -> dict[str, list[str]]:
    """The parameters of the callback query ``query``, once its ``state`` is this login's.

    Raises :class:`ForeignCallback` for a query without this login's ``state`` exactly once,
    whatever else it holds (an ``error`` included). The caller then reads ``error``, ``code``
    and ``iss`` from what is returned, with its own rule for repeated values.
    """
    params = parse_qs(query, keep_blank_values=True)
    states = params.get("state", [])
    if not states:
        raise ForeignCallback(
            "the authorization response has no state, so it is not this login's answer "
            "(a stale or forged callback); try the login again",
            missing=True,
        )
    if len(states) > 1:
        raise ForeignCallback(
            "the authorization response has more than one state, so it is not this login's "
            "answer (a forged callback); try the login again",
            missing=False,
        )
    if states[0] != state:
        raise ForeignCallback(
            "the authorization response's state does not match this login "
            "(a stale or forged callback); try the login again",
            missing=False,
        )
    return params


def check_callback(callback: str, *, state: str, issuer: str, metadata: Mapping[str, Any]) -> str:
    """The authorization code in ``callback``, the URL the browser was sent back to.

    Refused with :class:`AuthorizationError`: another login's answer (its ``state``), the
    server's refusal (``error``, its text cleaned), an answer from another issuer (RFC 9207
    ``iss``, required where ``metadata`` says the server sends it), or no code at all.
    """
    try:
        raw = urlsplit(callback).query
    except ValueError:  # e.g. an unbalanced "[" (an IPv6 host without its "]")
        raise AuthorizationError("the login returned an unusable callback URL") from None
    if not raw and "?" not in callback and "=" not in callback:
        raise AuthorizationError("the login returned no authorization response")
    # this login's state first, whatever else the answer holds (an error= included)
    query = callback_parameters(raw, state=state)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    error = one("error")
    if error is not None:
        error = clean_text(error, 100)
        description = clean_text(one("error_description") or "", 300) or None
        detail = f": {description}" if description else ""
        raise AuthorizationError(
            f"the authorization server refused the login ({error}{detail})",
            error=error,
            description=description,
        )
    iss = one("iss")
    if iss is not None and iss != issuer:
        raise AuthorizationError(
            f"the authorization response came from issuer {clean_text(iss, 200)!r}, "
            f"not {issuer!r} (RFC 9207 mix-up protection); refusing it"
        )
    if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
        raise AuthorizationError(
            f"the authorization response has no iss parameter although {issuer} "
            "advertises it (RFC 9207); refusing it"
        )
    code = one("code")
    if not code:
        raise AuthorizationError("the authorization response has no code")
    return code
