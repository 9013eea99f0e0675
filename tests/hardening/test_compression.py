"""Compressed answers: the 1 MiB cap holds on the decoded size, and nothing inflates past it.

A few hundred KB of gzip can inflate to hundreds of MB. httpx's own decoders inflate each
network chunk whole before anyone can count it, so the provider reads the raw bytes and
inflates them itself, at most the cap at a time. It asks for gzip and deflate only, and refuses
any other encoding. Real servers on 127.0.0.1 (uvicorn); what inflating cost is counted by
watching zlib's decompressors, never by measuring memory.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from mcp_client_auth import DiscoveryError, OAuthClientProvider, TokenStore
from mcp_client_auth.flow_http import MAX_BODY

from .drive import assert_clean
from .hostile import Hostile, Reply, Seen
from .test_own_client import get_through, live

__all__ = ["live"]  # the fixture, shared with test_own_client

pytestmark = pytest.mark.timeout(60)

COMBOS = [("httpx", "sync"), ("httpx", "async"), ("httpx2", "sync"), ("httpx2", "async")]
BOMB_INFLATED = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """200 MiB of zeros, gzipped: about 200 KB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MAX_BODY)
    parts = [packer.compress(zeros) for _ in range(BOMB_INFLATED // MAX_BODY)]
    data = b"".join(parts) + packer.flush()
    assert len(data) < MAX_BODY // 2
    return data


class Inflated:
    """Every zlib decompressor made while it watches, and how many bytes each one produced."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outputs: list[list[int]] = []
        real = zlib.decompressobj

        def watched(*args: Any, **kwargs: Any) -> _Watched:
            sizes: list[int] = []
            self.outputs.append(sizes)
            return _Watched(real(*args, **kwargs), sizes)

        monkeypatch.setattr(zlib, "decompressobj", watched)

    def most(self) -> int:
        """The most bytes any one decompressor produced in all."""
        return max(sum(sizes) for sizes in self.outputs)


class _Watched:
    def __init__(self, inner: Any, sizes: list[int]) -> None:
        self._inner = inner
        self._sizes = sizes

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self._inner.decompress(data, max_length)
        self._sizes.append(len(out))
        return out

    def flush(self, *args: Any) -> bytes:
        out: bytes = self._inner.flush(*args)
        self._sizes.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:  # unconsumed_tail, unused_data, eof
        return getattr(self._inner, name)


def encoded(make: Callable[[Seen], Reply], coding: str, pause: float = 0.0) -> Callable[..., Reply]:
    """A hook answering what ``make`` answers, compressed with ``coding``."""

    def hook(seen: Seen) -> Reply:
        reply = make(seen)
        assert isinstance(reply.body, bytes)
        if coding == "gzip":
            body, header = gzip.compress(reply.body), "gzip"
        elif coding == "deflate":
            body, header = zlib.compress(reply.body), "deflate"
        else:  # raw deflate: no zlib header, as some servers send "deflate"
            packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body, header = packer.compress(reply.body) + packer.flush(), "deflate"
        headers = [*reply.headers, ("content-encoding", header)]
        return Reply(reply.status, body, headers, pause=pause)

    return hook


def flow_requests(servers: Hostile) -> list[Seen]:
    return [s for s in servers.seen if servers.route(s) != "resource"]


@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_gzip_bomb_is_refused_without_inflating_it(
    live: Hostile, bomb: bytes, monkeypatch: pytest.MonkeyPatch, lib: str, mode: str
) -> None:
    live.hooks["prm"] = lambda seen: Reply(
        200, bomb, [("content-type", "application/json"), ("content-encoding", "gzip")]
    )
    inflated = Inflated(monkeypatch)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        get_through(lib, mode, auth, live.resource)
    assert_clean(info.value, DiscoveryError, r"larger than 1 MiB")
    assert inflated.outputs  # the bomb was opened, by the provider's decoder...
    assert inflated.most() <= MAX_BODY + 1  # ...which stopped one byte past the cap
    assert live.count("prm") >= 1 and live.token_requests() == []


def test_get_token_refuses_a_gzip_bomb(
    live: Hostile, bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The standalone driver (``get_token``, the command line): the same cap."""
    live.hooks["asm"] = lambda seen: Reply(
        200, bomb, [("content-type", "application/json"), ("content-encoding", "gzip")]
    )
    inflated = Inflated(monkeypatch)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        auth.get_token()
    assert_clean(info.value, DiscoveryError, rf"{live.asm_url} is larger than 1 MiB")
    assert inflated.most() <= MAX_BODY + 1


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize(("lib", "mode"), COMBOS)
def test_compressed_answers_are_read(live: Hostile, lib: str, mode: str, coding: str) -> None:
    """Metadata, registration and tokens all compressed: the whole flow works."""
    for name in ("prm", "asm", "register", "token"):
        live.hooks[name] = encoded(getattr(live, f"_{name}"), coding)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    assert get_through(lib, mode, auth, live.resource) == 200
    assert {s.headers.get("accept-encoding") for s in flow_requests(live)} == {"gzip, deflate"}


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_compressed_answer_trickled_a_byte_at_a_time_is_read(
    live: Hostile, mode: str, coding: str
) -> None:
    """One byte per network read: the decoder sees the zlib header split, and still tells a
    zlib-wrapped deflate stream from a raw one."""
    live.hooks["prm"] = encoded(functools.partial(live.correct, "prm"), coding, pause=0.001)
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    assert get_through("httpx", mode, auth, live.resource) == 200


@pytest.mark.parametrize("coding", ["utf-8", "none", "br", "gzip, gzip"])
@pytest.mark.parametrize(("lib", "mode"), [("httpx", "sync"), ("httpx2", "async")])
def test_other_labels_are_read_as_they_are(live: Hostile, lib: str, mode: str, coding: str) -> None:
    """Plain JSON under another label (servers say ``utf-8`` or ``none``; httpx ignores what
    it cannot decode): read as it is, so the flow works."""
    plain = live.hooks.get("prm") or functools.partial(live.correct, "prm")

    def labelled(seen: Seen) -> Reply:
        reply = plain(seen)
        return Reply(reply.status, reply.body, [*reply.headers, ("content-encoding", coding)])

    live.hooks["prm"] = labelled
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    assert get_through(lib, mode, auth, live.resource) == 200


@pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
@pytest.mark.parametrize(("lib", "mode"), [("httpx", "sync"), ("httpx2", "async")])
def test_a_coding_not_asked_for_is_a_typed_error(
    live: Hostile, lib: str, mode: str, coding: str
) -> None:
    """Really compressed in a coding the provider did not ask for: not JSON, a typed error."""
    live.hooks["prm"] = lambda seen: Reply(
        200, b"\x1b\x00\x00", [("content-type", "application/json"), ("content-encoding", coding)]
    )
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        get_through(lib, mode, auth, live.resource)
    assert_clean(info.value, DiscoveryError, r"not (valid )?JSON|not a JSON")


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_corrupt_compressed_answer_is_a_typed_error(live: Hostile, coding: str) -> None:
    def corrupt(seen: Seen) -> Reply:
        body = b"\x1f\x8b\x08\x00garbage-garbage" if coding == "gzip" else b"\xff\xfe garbage"
        return Reply(
            200, body, [("content-type", "application/json"), ("content-encoding", coding)]
        )

    live.hooks["prm"] = corrupt
    auth = OAuthClientProvider(live.resource, store=TokenStore.memory(), login=live.approve)
    with pytest.raises(DiscoveryError) as info:
        get_through("httpx", "sync", auth, live.resource)
    assert_clean(info.value, DiscoveryError, rf"is not valid {coding} data")
