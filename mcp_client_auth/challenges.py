"""``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1), parsed in one forward pass.

A protected resource tells the client where its metadata is and what scope it wants through
this header, so a hostile one shapes the header freely. The parser follows the RFC grammar
exactly, refuses anything else as :class:`DiscoveryError` naming the problem (a caller never
acts on half a header), reads each character a bounded number of times whatever the value
holds, and refuses values past :data:`MAX_CHALLENGE_HEADER_BYTES` before reading them.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn

from .errors import DiscoveryError

__all__ = [
    "MAX_CHALLENGE_HEADER_BYTES",
    "Challenge",
    "ChallengeScanner",
    "find_challenge",
    "parse_www_authenticate",
]

#: The largest total size of the ``WWW-Authenticate`` values parsed: a server chooses it, and
#: no real challenge comes near it.
MAX_CHALLENGE_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True, repr=False)
class Challenge:
    """One authentication challenge from a ``WWW-Authenticate`` header.

    ``params`` is read-only and keyed by lowercased names, because RFC 9110 makes auth-param
    names case-insensitive; ``scheme`` keeps the server's spelling so messages can quote it.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __post_init__(self) -> None:
        # Normalise here too, so a Challenge built by hand (in a test, or by a caller) obeys
        # the same lookup rules as a parsed one; the first of a repeated name wins.
        normalised: dict[str, str] = {}
        for name, value in self.params.items():
            normalised.setdefault(name.lower(), value)
        object.__setattr__(self, "params", MappingProxyType(normalised))

    def __hash__(self) -> int:
        return hash((self.scheme, frozenset(self.params.items()), self.token68))

    def param(self, name: str) -> str | None:
        """The value of auth-param ``name`` (case-insensitive), or None when absent."""
        return self.params.get(name.lower())

    def __repr__(self) -> str:
        return (
            f"Challenge(scheme={self.scheme!r}, params={dict(self.params)!r}, "
            f"token68={self.token68!r})"
        )


_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_TOKEN68_CHAR = frozenset("-._~+/" + string.ascii_letters + string.digits)
_OWS = frozenset(" \t")
_LIST_SEPARATOR = frozenset(" \t,")


class ChallengeScanner:
    """A single forward pass over one header value.

    Every method moves ``pos`` forward or looks ahead by a bounded amount that the next step
    consumes, so a value is parsed in linear time whatever it contains.
    """

    __slots__ = ("end", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)

    def fail(self, problem: str) -> NoReturn:
        near = self.text[self.pos : self.pos + 24]
        raise DiscoveryError(
            f"malformed WWW-Authenticate header: {problem} at character {self.pos}"
            + (f" (near {near!r})" if near else "")
        )

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def skip(self, chars: frozenset[str]) -> bool:
        start = self.pos
        while self.pos < self.end and self.text[self.pos] in chars:
            self.pos += 1
        return self.pos > start

    def _skip_from(self, i: int, chars: frozenset[str]) -> int:
        while i < self.end and self.text[i] in chars:
            i += 1
        return i

    def read_token(self, what: str) -> str:
        start = self.pos
        self.skip(_TCHAR)
        if self.pos == start:
            self.fail(f"expected {what}")
        return self.text[start : self.pos]

    def param_ahead(self) -> bool:
        """Whether an auth-param (``name BWS = BWS value``) starts here.

        This is what tells a further parameter of the current challenge from the scheme of the
        next challenge after a comma, and a parameter list from a token68 (which may end in
        ``=`` but is never followed by a value).
        """
        i = self._skip_from(self.pos, _TCHAR)
        if i == self.pos:
            return False
        i = self._skip_from(i, _OWS)
        if i >= self.end or self.text[i] != "=":
            return False
        i = self._skip_from(i + 1, _OWS)
        return i < self.end and (self.text[i] in _TCHAR or self.text[i] == '"')

    def read_param(self) -> tuple[str, str]:
        name = self.read_token("an auth-param name")
        self.skip(_OWS)
        if self.peek() != "=":
            self.fail("expected '=' after an auth-param name")
        self.pos += 1
        self.skip(_OWS)
        if self.peek() == '"':
            return name, self.read_quoted()
        return name, self.read_token("an auth-param value")

    def read_quoted(self) -> str:
        opening = self.pos
        self.pos += 1  # the opening quote
        pieces: list[str] = []
        text, end = self.text, self.end
        run_start = self.pos
        while self.pos < end:
            char = text[self.pos]
            if char == '"':
                pieces.append(text[run_start : self.pos])
                self.pos += 1
                return "".join(pieces)
            if char == "\\":
                pieces.append(text[run_start : self.pos])
                if self.pos + 1 >= end:
                    break
                escaped = text[self.pos + 1]
                if _is_control(escaped):
                    self.pos += 1
                    self.fail("control character escaped in a quoted string")
                pieces.append(escaped)
                self.pos += 2
                run_start = self.pos
                continue
            if _is_control(char):
                self.fail("control character in a quoted string")
            self.pos += 1
        self.pos = opening
        self.fail("unterminated quoted string")

    def read_token68(self) -> str:
        start = self.pos
        self.skip(_TOKEN68_CHAR)
        if self.pos == start:
            self.fail("expected a token68 or an auth-param after the auth-scheme")
        while self.peek() == "=":
            self.pos += 1
        return self.text[start : self.pos]

    def read_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        while True:
            name, value = self.read_param()
            params.setdefault(name.lower(), value)  # a repeated name keeps its first value
            self.skip(_OWS)
            if self.done:
                return params
            if self.peek() != ",":
                self.fail("expected ',' after an auth-param")
            self.skip(_LIST_SEPARATOR)
            if self.done or not self.param_ahead():
                return params  # the next element, if any, starts a new challenge

    def parse(self, out: list[Challenge]) -> None:
        while True:
            self.skip(_LIST_SEPARATOR)  # empty list elements are allowed (RFC 9110 5.6.1)
            if self.done:
                return
            scheme = self.read_token("an auth-scheme")
            spaced = self.skip(_OWS)
            if self.done:
                out.append(Challenge(scheme))
                return
            if self.peek() == ",":
                # Either the challenge ends here, or empty list elements come before its first
                # auth-param ("Bearer , realm=x"): an auth-param cannot begin a challenge, so
                # one found after the commas can only belong to this scheme.
                self.skip(_LIST_SEPARATOR)
                if self.done or not self.param_ahead():
                    out.append(Challenge(scheme))
                    continue
                out.append(Challenge(scheme, self.read_params()))
                continue
            if not spaced:
                self.fail(f"unexpected character after the auth-scheme {scheme!r}")
            if self.param_ahead():
                out.append(Challenge(scheme, self.read_params()))
                continue
            token68 = self.read_token68()
            self.skip(_OWS)
            if not self.done and self.peek() != ",":
                self.fail("unexpected character after a token68")
            out.append(Challenge(scheme, token68=token68))


def _is_control(char: str) -> bool:
    return (char < " " and char != "\t") or char == "\x7f"


def parse_www_authenticate(headers: str | Sequence[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` values into challenges, in order.

    ``headers`` is one header value or all of them (a server may send several header lines,
    and several challenges in one line). Anything that does not follow the RFC 9110 grammar
    raises :class:`DiscoveryError` naming the problem, so a caller never acts on half a header.
    """
    values = [headers] if isinstance(headers, str) else headers
    try:
        values = list(values)
    except TypeError:
        raise DiscoveryError("WWW-Authenticate: expected a string or a list of strings") from None
    total = 0
    for value in values:
        if not isinstance(value, str):
            raise DiscoveryError(
                f"WWW-Authenticate: expected header values as strings, got {type(value).__name__}"
            )
        # len() first (a character is at least one byte): a huge value is refused unencoded.
        if len(value) <= MAX_CHALLENGE_HEADER_BYTES:
            total += len(value.encode("utf-8", "surrogatepass"))
        if len(value) > MAX_CHALLENGE_HEADER_BYTES or total > MAX_CHALLENGE_HEADER_BYTES:
            raise DiscoveryError(
                f"WWW-Authenticate header is larger than {MAX_CHALLENGE_HEADER_BYTES} bytes"
            )
    challenges: list[Challenge] = []
    for value in values:
        ChallengeScanner(value).parse(challenges)
    return challenges


def find_challenge(
    challenges: Sequence[Challenge], schemes: Sequence[str] = ("bearer", "dpop")
) -> Challenge | None:
    """The first challenge whose scheme is one of ``schemes`` (case-insensitive).

    The server's order is kept because RFC 9110 leaves preference to the server's listing.
    """
    if isinstance(schemes, str):  # find_challenge(cs, "bearer") means one scheme, not letters
        schemes = (schemes,)
    wanted = {scheme.lower() for scheme in schemes}
    for challenge in challenges:
        if challenge.scheme.lower() in wanted:
            return challenge
    return None
