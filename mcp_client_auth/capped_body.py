"""The answer to one of the flow's requests, read into memory without exceeding a cap.

A server can send a few hundred kilobytes of gzip that inflate to gigabytes, and httpx's own
decoders inflate each network chunk whole before anything could check its size. Here the body
is read raw and inflated a bounded piece at a time, so no step holds more than the cap; a body
that passes it, announced or while it streams in, is the flow step's typed error.
"""

from __future__ import annotations

import zlib
from typing import Any

from .effects import HttpRequest, HttpResponse

__all__ = ["CappedBody", "Decoder"]


class Decoder:
    """Undoes the answer's Content-Encoding (gzip or deflate) a bounded piece at a time.

    httpx's own decoders inflate each network chunk whole, so a few hundred KB of gzip would
    become hundreds of MB in memory before the cap is checked; here no call yields more than
    the caller's ``limit``. Any other label (a server's ``utf-8`` or ``none`` on plain JSON,
    a coding we did not ask for) is read as it is, as httpx does: still capped, and what is
    not JSON then is the step's typed error.
    """

    def __init__(self, header: str) -> None:
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self.coding = codings[0] if len(codings) == 1 else ""
        self._probe: bytes | None = None  # deflate: the first bytes, until the zlib header is
        self._inflate: Any = None
        if not codings:
            return
        if self.coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._inflate = zlib.decompressobj()
            self._probe = b""

    def decode(self, chunk: bytes, limit: int) -> bytes:
        """At most ``limit`` bytes of ``chunk`` decoded; more waiting means the cap is passed."""
        if self._inflate is None:
            return chunk
        if self._probe is not None:
            return self._decode_deflate(chunk, limit)
        out: bytes = self._inflate.decompress(chunk, limit)
        return out

    def _decode_deflate(self, chunk: bytes, limit: int) -> bytes:
        """Deflate is sent zlib-wrapped (RFC 9110) or raw (some servers): try the first."""
        assert self._probe is not None
        self._probe += chunk
        try:
            out: bytes = self._inflate.decompress(chunk, limit)
        except zlib.error:
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._inflate.decompress(self._probe, limit)
            self._probe = None
            return out
        if len(self._probe) >= 2:  # the zlib header is checked: it is zlib-wrapped
            self._probe = None
        return out

    def flush(self, limit: int) -> bytes:
        if self._inflate is None:
            return b""
        out: bytes = self._inflate.flush(limit)
        return out

    def pending(self) -> bool:
        """Whether input is left that a ``limit`` stopped from being decoded."""
        return self._inflate is not None and bool(self._inflate.unconsumed_tail)


class CappedBody:
    """The answer to one flow request, refused once it passes ``limit`` bytes (announced, or
    decoded while it streams in)."""

    def __init__(self, effect: HttpRequest, response: Any, *, limit: int) -> None:
        self.limit = limit
        self.effect = effect
        self.response = response
        self.data = bytearray()
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self.limit:
            raise self._too_large()
        self.decoder = Decoder(response.headers.get("content-encoding", ""))

    def add(self, chunk: bytes) -> None:
        """Decode ``chunk`` (raw bytes off the network) into the body, one byte past the cap
        at most: a body that reaches that byte is refused."""
        try:
            self._take(self.decoder.decode(chunk, self._room()))
        except zlib.error:
            raise self._undecodable() from None

    def add_decoded(self, content: bytes) -> None:
        """A body the transport already read and decoded (httpx's ``MockTransport`` reads an
        answer made of bytes when it makes it): only the cap is left to apply."""
        self.decoder = Decoder("")
        self._take(content)

    def effect_response(self) -> HttpResponse:
        try:
            self._take(self.decoder.flush(self._room()))
        except zlib.error:
            raise self._undecodable() from None
        response = self.response
        return HttpResponse(
            status_code=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=bytes(self.data),
            url=str(response.url),
            challenges=tuple(response.headers.get_list("www-authenticate")),
            request=self.effect,
        )

    def _room(self) -> int:
        return self.limit - len(self.data) + 1  # never 0: zlib reads 0 as "no limit"

    def _take(self, decoded: bytes) -> None:
        self.data += decoded
        if len(self.data) > self.limit or self.decoder.pending():
            raise self._too_large()

    def _too_large(self) -> Exception:
        effect = self.effect
        return effect.error(
            f"the {effect.what} response from {effect.url} is larger than "
            f"{self.limit / 1024 / 1024:g} MiB; refusing it"
        )

    def _undecodable(self) -> Exception:
        effect = self.effect
        return effect.error(
            f"the {effect.what} response from {effect.url} is not valid {self.decoder.coding} data"
        )
