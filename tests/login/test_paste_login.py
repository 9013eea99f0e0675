"""PasteLogin: the URL printed, the answer read back and checked."""

from __future__ import annotations

import asyncio
import io
import os
import re

import pytest

from mcp_client_auth.errors import AuthorizationError
from mcp_client_auth.login import PasteLogin
from mcp_client_auth.login.paste import PasteRejected, parse_pasted

STATE = "st-4Fz"
CODE = "c0de_Value-1"
REDIRECT = "http://127.0.0.1:8765/callback"
AUTH_URL = "https://as.example/authorize?client_id=x&state=" + STATE


async def run(
    lines: str,
    *,
    redirect_uri: str | None = REDIRECT,
    redirect_port: int | None = None,
    timeout: float = 5,
) -> tuple[str, str]:
    output = io.StringIO()
    login = PasteLogin(input=io.StringIO(lines), output=output)
    session = await login.start(redirect_uri=redirect_uri, redirect_port=redirect_port)
    try:
        url = await session.complete(AUTH_URL, state=STATE, timeout=timeout)
    finally:
        await session.aclose()
    return url, output.getvalue()


async def test_full_url() -> None:
    pasted = f"{REDIRECT}?code={CODE}&state={STATE}&iss=https%3A%2F%2Fas.example"
    url, out = await run(pasted + "\n")
    assert url == pasted
    assert AUTH_URL in out
    assert "127.0.0.1:8765/callback" in out and "expected" in out


@pytest.mark.parametrize(
    "pasted",
    [
        f"  '{REDIRECT}?code={CODE}&state={STATE}'  ",  # quoted, padded
        f"127.0.0.1:8765/callback?code={CODE}&state={STATE}",  # address bar without scheme
        f"http://localhost:8765/callback?code={CODE}&state={STATE}",  # another loopback spelling
        f"?code={CODE}&state={STATE}",  # the query alone
        f"code={CODE}&state={STATE}",
        f"/callback?code={CODE}&state={STATE}",
    ],
)
def test_forms_of_the_address(pasted: str) -> None:
    assert parse_pasted(pasted, redirect_uri=REDIRECT, state=STATE) == (
        f"{REDIRECT}?code={CODE}&state={STATE}"
    )


async def test_just_the_code() -> None:
    url, _ = await run(CODE + "\n")
    assert url == f"{REDIRECT}?code={CODE}&state={STATE}"
    with_query = parse_pasted(CODE, redirect_uri=REDIRECT + "?tenant=7", state=STATE)
    assert with_query == f"{REDIRECT}?tenant=7&code={CODE}&state={STATE}"


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("", "Nothing was pasted"),
        (f"{REDIRECT}?code={CODE}&state=other", "different sign-in attempt"),
        (f"{REDIRECT}?code={CODE}", "no 'state'"),
        (f"{REDIRECT}?state={STATE}", "no 'code'"),
        (f"{REDIRECT}?code=a&code=b&state={STATE}", "more than one 'code'"),
        (AUTH_URL, "not the address the browser was sent back to"),
        (f"http://127.0.0.1:9999/callback?code={CODE}&state={STATE}", "should start with"),
        (f"http://127.0.0.1:8765/other?code={CODE}&state={STATE}", "should start with"),
        ("two words", "does not look like"),
        ("some/path", "does not look like"),
    ],
)
def test_bad_pastes_are_explained(pasted: str, reason: str) -> None:
    with pytest.raises(PasteRejected, match=re.escape(reason)):
        parse_pasted(pasted, redirect_uri=REDIRECT, state=STATE)


async def test_bad_then_good() -> None:
    good = f"{REDIRECT}?code={CODE}&state={STATE}"
    url, out = await run(f"{AUTH_URL}\n{REDIRECT}?code=x&state=old\n{good}\n")
    assert url == good
    assert out.count("Try again") == 2
    assert "different sign-in attempt" in out


async def test_error_answer_raises() -> None:
    with pytest.raises(AuthorizationError) as info:
        await run(f"{REDIRECT}?error=access_denied&error_description=nope&state={STATE}\n")
    assert info.value.error == "access_denied"
    assert info.value.description == "nope"


@pytest.mark.parametrize(
    "forged",
    [
        f"{REDIRECT}?error=access_denied",
        f"{REDIRECT}?error=access_denied&state=other",
        "?error=access_denied&error_description=nope",
        "error=access_denied&state=",
    ],
)
async def test_an_error_without_this_logins_state_is_refused_and_asked_again(
    forged: str,
) -> None:
    """As a wrong state: the paste is refused, the user asked again; the right answer wins."""
    good = f"{REDIRECT}?code={CODE}&state={STATE}"
    url, out = await run(f"{forged}\n{good}\n")
    assert url == good
    assert out.count("Try again") == 1
    assert "cancelled or refused" not in out


async def test_end_of_input_raises() -> None:
    with pytest.raises(AuthorizationError, match="input ended"):
        await run("")


async def test_too_many_bad_tries() -> None:
    with pytest.raises(AuthorizationError, match="no usable address"):
        await run("x y\n" * 10)


async def test_timeout_while_nobody_types() -> None:
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as stdin:
        try:
            login = PasteLogin(input=stdin, output=io.StringIO())
            session = await login.start(redirect_uri=REDIRECT, redirect_port=None)
            with pytest.raises(AuthorizationError, match="did not finish"):
                await session.complete(AUTH_URL, state=STATE, timeout=0.2)
        finally:
            os.close(write_fd)  # EOF ends the abandoned reader before its file is closed


async def test_cancel_while_nobody_types() -> None:
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as stdin:
        try:
            login = PasteLogin(input=stdin, output=io.StringIO())
            session = await login.start(redirect_uri=REDIRECT, redirect_port=None)
            task = asyncio.ensure_future(session.complete(AUTH_URL, state=STATE, timeout=60))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            os.close(write_fd)


async def test_default_redirect_uri() -> None:
    login = PasteLogin(input=io.StringIO(), output=io.StringIO())
    session = await login.start(redirect_uri=None, redirect_port=4321)
    assert session.redirect_uri == "http://127.0.0.1:4321/callback"
    session = await login.start(redirect_uri=None, redirect_port=None)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", session.redirect_uri)
    given = "https://app.example/cb"
    session = await login.start(redirect_uri=given, redirect_port=4321)
    assert session.redirect_uri == given
    url, _ = await run(f"{given}?code={CODE}&state={STATE}\n", redirect_uri=given)
    assert url == f"{given}?code={CODE}&state={STATE}"


def requires_iss(url: str) -> str:
    """The flow's check where the server advertises RFC 9207 ``iss``."""
    if "iss=" not in url:
        raise AuthorizationError("the authorization response has no iss parameter")
    return "code"


async def test_a_paste_the_flow_refuses_gets_the_reason_and_another_try() -> None:
    full = f"{REDIRECT}?code={CODE}&state={STATE}&iss=https%3A%2F%2Fas.example"
    output = io.StringIO()
    login = PasteLogin(
        input=io.StringIO(f"{CODE}\n{REDIRECT}?code={CODE}&state={STATE}\n{full}\n"), output=output
    )
    session = await login.start(redirect_uri=REDIRECT, redirect_port=None)
    session.check_callbacks_with(requires_iss)
    assert await session.complete(AUTH_URL, state=STATE, timeout=5) == full
    out = output.getvalue()
    assert "just the value of 'code'" not in out
    assert "The code alone is not enough here" in out
    assert "That address is not the answer to this sign-in" in out
    assert out.count("Try again") == 2 and CODE not in out


async def test_a_refused_paste_is_not_repeated_to_the_user() -> None:
    """An iss of another server (or anything else the paste carries) is not echoed back: the
    prompt's words are the project's own."""
    planted = "CALL SUPPORT AT +1-555-0100"
    hostile = f"{REDIRECT}?code={CODE}&state={STATE}&iss={planted.replace(' ', '%20')}"
    full = f"{REDIRECT}?code={CODE}&state={STATE}&iss=https%3A%2F%2Fas.example"

    def same_issuer(callback: str) -> str:
        if "iss=https%3A%2F%2Fas.example" not in callback:
            raise AuthorizationError(f"the authorization response came from issuer {planted!r}")
        return "code"

    output = io.StringIO()
    login = PasteLogin(input=io.StringIO(f"{hostile}\n{full}\n"), output=output)
    session = await login.start(redirect_uri=REDIRECT, redirect_port=None)
    session.check_callbacks_with(same_issuer)
    assert await session.complete(AUTH_URL, state=STATE, timeout=5) == full
    out = output.getvalue()
    assert "That address is not the answer to this sign-in" in out
    assert "555" not in out and "SUPPORT" not in out


async def test_refused_pastes_still_end_after_the_last_try() -> None:
    output = io.StringIO()
    login = PasteLogin(input=io.StringIO(f"{CODE}\n" * 10), output=output)
    session = await login.start(redirect_uri=REDIRECT, redirect_port=None)
    session.check_callbacks_with(requires_iss)
    with pytest.raises(AuthorizationError, match="no usable address"):
        await session.complete(AUTH_URL, state=STATE, timeout=5)
    assert output.getvalue().count("The code alone is not enough") == 5
