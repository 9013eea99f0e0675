"""Paste-back login: for machines with no browser of their own (SSH sessions, containers).

The user opens the authorization URL on any device. The authorization server then sends that
browser to the loopback redirect URI, where nothing listens on the user's device, so the
browser shows a "cannot connect" page whose address holds the answer; the user copies that
address (or just the ``code`` in it) back into the terminal. The answer is parsed and its
``state`` checked here, so a mistake (the sign-in URL pasted back, an answer from an older
attempt) gets an explanation and another try rather than a failed token request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..callback import ForeignCallback, callback_parameters
from ..errors import AuthorizationError
from ..server_text import visible_url
from .base import Login, LoginSession, free_loopback_port, loopback_redirect_uri
from .loopback import is_loopback_name
from .terminal import clean, default_input, default_output, describe_duration, read_line

__all__ = ["PasteLogin", "PasteRejected", "authorization_error", "parse_pasted", "read_pasted"]

MAX_ATTEMPTS = 5


class PasteRejected(ValueError):
    """What the user pasted cannot be used; the message says why, for another try.

    ``kind`` is ``"state"`` for an answer from another login (the loopback listener shows its
    own page for that), else ``"input"``; ``for_browser`` is the message worded for a page.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "input",
        for_browser: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.for_browser = for_browser or message


def authorization_error(error: str, description: str | None) -> AuthorizationError:
    """The error for an ``error=`` answer from the authorization server (RFC 6749 4.1.2.1)."""
    error = clean(error, 100)
    description = clean(description) if description else None
    if error == "access_denied":
        message = "the sign-in was cancelled or refused in the browser (access_denied)"
    else:
        message = f"the authorization server refused the sign-in ({error})"
    if description:
        message += f": {description}"
    return AuthorizationError(message, error=error, description=description)


def _same_host(a: str | None, b: str | None) -> bool:
    """Host names equal, counting loopback spellings (localhost, 127.0.0.1, ::1) as one."""
    if a == b:
        return True
    return is_loopback_name(a) and is_loopback_name(b)


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise PasteRejected(
            f"That address has more than one '{name}'; paste it as it was.",
            for_browser=f"The answer has more than one '{name}'.",
        )
    return values[0]


def check_answer(query: str, *, state: str) -> None:
    """Refuse a callback query that is not this login's answer; raise on its ``error=``.

    ``PasteRejected`` (a missing, repeated or other state, whatever else the query holds; no
    code): the wait goes on. ``AuthorizationError`` (the server's ``error=`` with this
    login's state): the login is over. The state rule is the flow's own
    (:func:`~mcp_client_auth.callback.callback_parameters`).
    """
    try:
        params = callback_parameters(query, state=state)
    except ForeignCallback as exc:
        if exc.missing:
            raise PasteRejected(
                "That address has no 'state'; copy the whole address from the browser's "
                "address bar.",
                kind="state",
            ) from None
        raise PasteRejected(
            "That answer belongs to a different sign-in attempt (its state does not match). "
            "Use the address from this attempt.",
            kind="state",
        ) from None
    error = _single(params, "error")
    if error is not None:
        raise authorization_error(error, _single(params, "error_description"))
    if not _single(params, "code"):
        raise PasteRejected(
            "That address has no 'code'; copy the whole address.",
            for_browser="The answer has neither a 'code' nor an 'error'.",
        )


def parse_pasted(text: str, *, redirect_uri: str, state: str) -> str:
    """The callback URL from what a user pasted: the full redirected URL, or just the code.

    Returns the URL the browser was sent back to, on the redirect URI's own scheme, host and
    port (so the flow compares like with like). A bare code becomes
    ``{redirect_uri}?code=...&state=...`` with this login's state; note that such an answer
    carries no ``iss``, so a flow that requires ``iss`` (RFC 9207) asks for the full URL.
    """
    text = _tidy(text)
    if not text:
        raise PasteRejected("Nothing was pasted.")
    redirect = urlsplit(redirect_uri)
    if _is_bare(text):
        if any(c.isspace() for c in text) or not all(0x21 <= ord(c) <= 0x7E for c in text):
            raise PasteRejected(
                "That does not look like an address or a code; paste the whole address."
            )
        if text.startswith(("http:", "https:")) or "/" in text:
            raise PasteRejected("That does not look like the address the browser was sent to.")
        separator = "&" if redirect.query else ""
        query = redirect.query + separator + urlencode({"code": text, "state": state})
        return urlunsplit((redirect.scheme, redirect.netloc, redirect.path, query, ""))
    if "://" not in text:
        origin = f"{redirect.scheme}://{redirect.netloc}"
        head = text.split("/", 1)[0].split("?", 1)[0]
        if text.startswith("?"):  # just the query
            text = origin + (redirect.path or "/") + text
        elif text.startswith("/"):  # the path and query
            text = origin + text
        elif "=" in head:  # "code=...&state=..."
            text = origin + (redirect.path or "/") + "?" + text
        else:  # "127.0.0.1:8765/callback?code=...": the address bar without its scheme
            text = f"{redirect.scheme}://{text}"
    pasted = urlsplit(text)
    try:
        pasted_port = pasted.port
    except ValueError:
        raise PasteRejected("That address has an invalid port.") from None
    same_place = (
        pasted.scheme.lower() == redirect.scheme.lower()
        and _same_host(pasted.hostname, redirect.hostname)
        and (pasted_port or _default_port(pasted.scheme))
        == (redirect.port or _default_port(redirect.scheme))
        and pasted.path == (redirect.path or "/")
    )
    if not same_place:
        shown = urlunsplit((redirect.scheme, redirect.netloc, redirect.path, "", ""))
        raise PasteRejected(
            f"That is not the address the browser was sent back to: it should start with "
            f"{shown}. (The sign-in URL itself is not the answer.)"
        )
    check_answer(pasted.query, state=state)
    return urlunsplit((redirect.scheme, redirect.netloc, pasted.path, pasted.query, ""))


def _tidy(text: str) -> str:
    return text.strip().strip("'\"<>").strip()


def _is_bare(text: str) -> bool:
    """Whether a (tidied) paste is a lone value, taken for the code, not an address."""
    looks_like_query = text.startswith("?") or any(
        key in text for key in ("code=", "state=", "error=")
    )
    return "://" not in text and not looks_like_query


def _checked(
    url: str, pasted: str, check: Callable[[str], object] | None, *, redirect_uri: str
) -> str:
    """``url`` once the flow's own check (RFC 9207 ``iss``, ...) accepts it; else the reason,
    in one line, as a :class:`PasteRejected` asking for the whole address."""
    if check is None:
        return url
    try:
        check(url)
    except AuthorizationError:
        shown = urlunsplit(urlsplit(redirect_uri)._replace(query="", fragment=""))
        if _is_bare(_tidy(pasted)):
            reason = (
                "The code alone is not enough here: this server also names itself (iss) in "
                "the address it sends the browser to."
            )
        else:  # said in fixed words: the pasted text (an iss, say) is not repeated to the user
            reason = (
                "That address is not the answer to this sign-in (its state, issuer or code "
                "does not match)."
            )
        raise PasteRejected(
            f"{reason} Paste the whole address the browser was sent to (it starts with {shown})."
        ) from None
    return url


def _code_alone_accepted(
    check: Callable[[str], object] | None, *, redirect_uri: str, state: str
) -> bool:
    """Whether the flow's check takes an answer made from a bare code (no ``iss``): if not,
    the user is not invited to paste just the code."""
    if check is None:
        return True
    try:
        check(parse_pasted("code-probe", redirect_uri=redirect_uri, state=state))
    except AuthorizationError:
        return False
    return True


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme.lower())


async def read_pasted(
    input: TextIO,
    output: TextIO,
    *,
    redirect_uri: str,
    state: str,
    prompt: str = "Paste the address here: ",
    check: Callable[[str], object] | None = None,
) -> str:
    """Ask until a usable answer is pasted (at most ``MAX_ATTEMPTS`` tries).

    ``check`` is the flow's own check of the answer (:meth:`LoginSession.check_callbacks_with`):
    an answer it refuses (a bare code where the server sends ``iss``, say) gets the reason and
    another try, rather than ending the login after the paste. Raises ``AuthorizationError``
    when the input ends, the tries run out, or the pasted answer is the server's ``error=``.
    """
    for attempt in range(MAX_ATTEMPTS):
        output.write(prompt)
        output.flush()
        line = await read_line(input)
        if line is None:
            output.write("\n")
            raise AuthorizationError(
                "the input ended before the address was pasted; run the login again"
            )
        try:
            url = parse_pasted(line, redirect_uri=redirect_uri, state=state)
            return _checked(url, line, check, redirect_uri=redirect_uri)
        except PasteRejected as exc:
            output.write(f"{exc}\n")
            if attempt + 1 < MAX_ATTEMPTS:
                output.write("Try again.\n")
            output.flush()
    raise AuthorizationError(
        f"no usable address was pasted in {MAX_ATTEMPTS} tries; run the login again"
    )


class _PasteSession(LoginSession):
    def __init__(self, redirect_uri: str, input: TextIO | None, output: TextIO | None) -> None:
        self.redirect_uri = redirect_uri
        self._input = input
        self._output = output
        self._check: Callable[[str], object] | None = None

    def check_callbacks_with(self, check: Callable[[str], object]) -> None:
        self._check = check

    async def complete(self, authorization_url: str, *, state: str, timeout: float) -> str:
        output = default_output(self._output)
        shown = urlunsplit(urlsplit(self.redirect_uri)._replace(query="", fragment=""))
        just_code = _code_alone_accepted(self._check, redirect_uri=self.redirect_uri, state=state)
        output.write(
            "\nOpen this URL in a browser on any device and sign in:\n\n"
            f"    {visible_url(authorization_url)}\n\n"
            f"Afterwards the browser is sent to {shown}, which will probably fail to load "
            '("can\'t connect" or similar). That is expected: copy the whole address from the '
            "address bar and paste it below"
            + (" (or just the value of 'code' in it)" if just_code else "")
            + ".\n"
            f"(You have {describe_duration(timeout)}; Ctrl+C cancels.)\n"
        )
        output.flush()
        try:
            return await asyncio.wait_for(
                read_pasted(
                    default_input(self._input),
                    output,
                    redirect_uri=self.redirect_uri,
                    state=state,
                    check=self._check,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            output.write("\n")
            raise AuthorizationError(
                f"the sign-in did not finish within {describe_duration(timeout)}; "
                "run the login again"
            ) from None


class PasteLogin(Login):
    """Print the authorization URL; read back the address the browser was sent to.

    For headless machines: the browser can be on any device. The redirect URI is the one
    given (the stored registration's), else ``http://127.0.0.1:{redirect_port}/callback``,
    on a free port when none is set. Nothing listens there.
    """

    def __init__(self, *, input: TextIO | None = None, output: TextIO | None = None) -> None:
        self._input = input
        self._output = output

    async def start(self, *, redirect_uri: str | None, redirect_port: int | None) -> LoginSession:
        uri = redirect_uri or loopback_redirect_uri(redirect_port or free_loopback_port())
        return _PasteSession(uri, self._input, self._output)

    def __repr__(self) -> str:
        return "PasteLogin()"
