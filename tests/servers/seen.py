"""A request as a fake server saw it: what the tests assert was sent, and where."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request: method, full URL, headers (lower-case names), raw body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The body as a form (first value of each field); empty when it is not text."""
        try:
            return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}
        except UnicodeDecodeError:
            return {}

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def query(self) -> dict[str, str]:
        """The URL's query (first value of each parameter)."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}
