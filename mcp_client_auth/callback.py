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

from urllib.parse import parse_qs

from .errors import AuthorizationError

__all__ = ["ForeignCallback", "callback_parameters"]


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
