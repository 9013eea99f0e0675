"""The browser pages: self-contained, plain, and free of codes and tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re

import httpx
import pytest

from mcp_client_auth.login import BrowserLogin, pages
from mcp_client_auth.login.terminal import clean, describe_duration, format_remaining

ALL_PAGES = [
    pages.success_page(),
    pages.error_page("access_denied", "The user said no"),
    pages.error_page("invalid_scope", None),
    pages.state_mismatch_page(),
    pages.bad_request_page("x"),
    pages.finished_page(),
    pages.not_found_page(),
    pages.method_not_allowed_page(),
    pages.refused_page(),
]


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: f"{p.status}-{len(p.body)}")
def test_pages_are_self_contained(page: pages.Page) -> None:
    text = page.text
    assert text.startswith("<!doctype html>")
    assert len(page.body) < 4000
    for external in ("src=", "href=", "url(", "@import", "http://", "https://", "<link", "<img"):
        assert external not in text
    for inline, kind in (
        (r"<style>(.*?)</style>", "style-src"),
        (r"<script>(.*?)</script>", "script-src"),
    ):
        block = re.search(inline, text, re.S)
        assert block is not None
        digest = base64.b64encode(hashlib.sha256(block.group(1).encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in pages.CONTENT_SECURITY_POLICY


async def test_served_pages_contain_no_code_or_state(no_stdin_terminal: None) -> None:
    code, state = "CODE-should-not-appear-9f8e", "STATE-should-not-appear-1a2b"
    session = await BrowserLogin(opener=lambda url: True, output=io.StringIO()).start(
        redirect_uri=None, redirect_port=None
    )
    task = asyncio.ensure_future(session.complete("https://as/authorize", state=state, timeout=10))
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient(trust_env=False) as client:
        base = session.redirect_uri
        answers = [
            await client.get(base.replace("/callback", "/favicon.ico") + f"?code={code}"),
            await client.get(f"{base}?code={code}&state=wrong-{state}"),
            await client.get(f"{base}?code={code}"),
            await client.get(f"{base}?code={code}&state={state}&access_token={code}"),
        ]
        await task
    for response in answers:
        assert code not in response.text and state not in response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Signed in" in answers[-1].text


def test_terminal_helpers() -> None:
    assert format_remaining(299.2) == "5:00"
    assert format_remaining(59) == "0:59"
    assert format_remaining(-3) == "0:00"
    assert format_remaining(3725) == "1:02:05"
    assert describe_duration(300) == "5 min"
    assert describe_duration(90) == "1 min 30 s"
    assert describe_duration(0.5) == "0.5 s"
    assert clean("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert clean("x" * 500, 10) == "x" * 9 + "…"
