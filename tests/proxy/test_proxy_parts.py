"""The proxy's small parts: ``--header`` parsing, the clean-URL rule for the browser opener,
SSE parsing, and the stdout guard."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mcp_client_auth import ConfigurationError
from mcp_client_auth.proxy import stdio
from mcp_client_auth.proxy.headers import parse_header_option
from mcp_client_auth.proxy.login import checked_opener, is_clean_url
from mcp_client_auth.proxy.sse import Event, events, lines_of


def test_header_values_expand_environment_variables() -> None:
    env = {"TOKEN": "abc", "ORG": "x"}
    assert parse_header_option("X-Api-Key: ${TOKEN}-$ORG", env) == ("X-Api-Key", "abc-x")


@pytest.mark.parametrize(
    "text",
    [
        "no colon",
        "Bad Name: x",
        "X-Missing: $NOT_SET",
        "X-Break: a\r\nInjected: yes",
        "Authorization: Bearer x",
        "Mcp-Session-Id: stolen",
    ],
)
def test_bad_headers_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_header_option(text, {})


def test_a_variable_cannot_smuggle_a_second_header() -> None:
    with pytest.raises(ConfigurationError, match="cannot carry"):
        parse_header_option("X-A: $V", {"V": "a\r\nX-B: b"})


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://as.example.com/authorize?client_id=a&state=b", True),
        ("http://127.0.0.1:8080/auth?x=1", True),
        ("http://localhost/auth", True),
        ("http://as.example.com/authorize", False),
        ("file:///etc/passwd", False),
        ("javascript:alert(1)", False),
        ("https://as.example.com/a'b", False),
        ("https://as.example.com/$(touch /tmp/pwned)", False),
        ("https://as.example.com/a`id`", False),
        ("https://as.example.com/a b", False),
        ("https://as.example.com/\u202eexe", False),
        ("https://user:pw@as.example.com/", False),
        ("-https://as.example.com/", False),
    ],
)
def test_only_clean_urls_reach_the_browser(url: str, clean: bool) -> None:
    assert is_clean_url(url) is clean


def test_the_opener_refuses_a_hostile_url_without_running_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("mcp_client_auth.proxy.login.open_system_browser", opened.append)
    assert checked_opener("https://a.example/$(reboot)") is False
    assert opened == []


def collect(text: str) -> list[Event]:
    async def lines() -> AsyncIterator[str]:
        for line in text.split("\n"):
            yield line

    async def run() -> list[Event]:
        return [e async for e in events(lines())]

    return asyncio.run(run())


def test_sse_ids_persist_and_an_id_only_event_is_a_resumption_point() -> None:
    found = collect("id: 7\ndata: a\n\nid: 8\n\ndata: b\nretry: 250\n\ndata: unfinished")
    assert [(e.data, e.id, e.retry) for e in found] == [
        ("a", "7", None),
        ("", "8", None),
        ("b", "8", 250),
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        ["a\r\nb\n\n"],
        ["a\r", "\nb\n", "", "\n"],
        ["a", "\r", "\n", "b\r\r"],
        ["a\nb", "\n\n"],
    ],
)
def test_sse_lines_end_at_any_of_the_three_endings_across_chunks(chunks: list[str]) -> None:
    async def source() -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    async def run() -> list[str]:
        return [line async for line in lines_of(source())]

    assert asyncio.run(run()) == ["a", "b", ""]


def test_a_stray_print_cannot_reach_the_protocol_stream() -> None:
    script = (
        "from mcp_client_auth.proxy.stdio import protect_stdout\n"
        "out = protect_stdout()\n"
        "print('stray text')\n"
        "out.write(b'{}\\n'); out.flush()\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert run.stdout == b"{}\n"
    assert b"stray text" in run.stderr


@pytest.mark.parametrize("kind", ["pipe", "file"])
def test_an_overlong_host_line_is_dropped_and_reading_goes_on(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(stdio, "MAX_LINE", 64)
    data = b"first\r\n" + b"x" * 300 + b"\n" + b"after\n" + b"last without newline"
    if kind == "pipe":
        read_fd, write_fd = os.pipe()
        os.write(write_fd, data)
        os.close(write_fd)
        source = os.fdopen(read_fd, "rb")
    else:
        path = tmp_path / "lines"
        path.write_bytes(data)
        source = path.open("rb")

    async def run() -> list[bytes | None]:
        return [line async for line in stdio.host_lines(source)]

    with source:
        assert asyncio.run(run()) == [b"first", None, b"after", b"last without newline"]
