"""BrowserLogin's loopback listener, driven by real HTTP requests over loopback."""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_client_auth.errors import AuthorizationError, ConfigurationError
from mcp_client_auth.login import (
    BrowserLogin,
    BrowserLoginSession,
    NoBrowserError,
    PortInUseError,
)
from mcp_client_auth.login.browser import DEVICE_FALLBACK_NOTE, system_browser_available
from mcp_client_auth.login.listener import is_loopback_peer

STATE = "state-Zx81"
CODE = "code-SECRET-4711"
AUTH_URL = "https://as.example/authorize?client_id=abc&state=" + STATE

pytestmark = pytest.mark.usefixtures("no_stdin_terminal")


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def callback(session: BrowserLoginSession, **params: str) -> str:
    return str(httpx.URL(session.redirect_uri, params=params))


def never_opens(url: str) -> bool:
    return False


def opens(url: str) -> bool:
    return True


@pytest.fixture
def output() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as c:
        yield c


async def start(
    login: BrowserLogin, redirect_uri: str | None = None, redirect_port: int | None = None
) -> BrowserLoginSession:
    return await login.start(redirect_uri=redirect_uri, redirect_port=redirect_port)


def completing(
    session: BrowserLoginSession, timeout: float = 10.0, state: str = STATE
) -> asyncio.Task[str]:
    return asyncio.ensure_future(session.complete(AUTH_URL, state=state, timeout=timeout))


# Generous: a busy 2-core CI machine can take seconds for what takes milliseconds here.
WAIT = 30.0


async def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)


async def wait_listening(session: BrowserLoginSession) -> None:
    """``complete`` starts serving at its first await; let it get there."""
    await eventually(lambda: session.listening, "the listener never started")


# -- the happy path and what must not consume the login --------------------------------------


async def test_callback_returns_full_url_and_closes(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    assert session.redirect_uri == f"http://127.0.0.1:{session.port}/callback"
    task = completing(session)
    await wait_listening(session)
    response = await client.get(callback(session, code=CODE, state=STATE, iss="https://as.example"))
    assert response.status_code == 200
    assert "Signed in" in response.text
    url = await task
    assert urlsplit(url).path == "/callback"
    assert parse_qs(urlsplit(url).query) == {
        "code": [CODE],
        "state": [STATE],
        "iss": ["https://as.example"],
    }
    assert url.startswith(session.redirect_uri + "?")
    assert session.port is not None and not port_is_open(session.port)
    # a second callback finds nobody listening
    with pytest.raises(httpx.ConnectError):
        await client.get(callback(session, code=CODE, state=STATE))


async def test_other_paths_404_and_do_not_consume(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    base = session.redirect_uri.rsplit("/", 1)[0]
    for path in ("/favicon.ico", "/", "/callback/extra", "/Callback"):
        response = await client.get(base + path + f"?code={CODE}&state={STATE}")
        assert response.status_code == 404, path
    assert not task.done()
    head = await client.head(callback(session, code=CODE, state=STATE))
    assert head.status_code == 200  # a prefetch: answered, not consumed
    post = await client.post(callback(session, code=CODE, state=STATE))
    assert post.status_code == 405
    await asyncio.sleep(0.05)
    assert not task.done()
    assert (await client.get(callback(session, code=CODE, state=STATE))).status_code == 200
    assert CODE in await task


async def test_wrong_state_refused_then_right_accepted(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    wrong = await client.get(callback(session, code="forged", state="not-" + STATE))
    assert wrong.status_code == 400
    assert "not the current one" in wrong.text
    missing = await client.get(callback(session, code="forged"))
    assert missing.status_code == 400
    forged_error = await client.get(callback(session, error="access_denied", state="other"))
    assert forged_error.status_code == 400
    no_code = await client.get(callback(session, state=STATE))
    assert no_code.status_code == 400
    twice = await client.get(session.redirect_uri + f"?code=a&state={STATE}&state={STATE}")
    assert twice.status_code == 400
    await asyncio.sleep(0.05)
    assert not task.done()
    assert (await client.get(callback(session, code=CODE, state=STATE))).status_code == 200
    assert parse_qs(urlsplit(await task).query)["code"] == [CODE]
    assert "its state is missing or does not match" in output.getvalue()


async def test_error_response_shows_page_and_raises(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    response = await client.get(
        callback(
            session,
            error="access_denied",
            error_description="The user said no",
            state=STATE,
        )
    )
    assert response.status_code == 400
    assert "cancelled or refused" in response.text
    assert "access_denied" in response.text and "The user said no" in response.text
    with pytest.raises(AuthorizationError) as info:
        await task
    assert info.value.error == "access_denied"
    assert info.value.description == "The user said no"
    assert "access_denied" in str(info.value)
    assert session.port is not None and not port_is_open(session.port)


@pytest.mark.parametrize(
    "query",
    [
        "error=access_denied",
        "error=invalid_scope&error_description=forged",
        "error=access_denied&state=",
        "error=access_denied&state=other",
        f"error=access_denied&state={STATE}&state=other",
    ],
)
async def test_an_error_without_this_logins_state_keeps_the_login_waiting(
    output: io.StringIO, client: httpx.AsyncClient, query: str
) -> None:
    """Anything that can reach 127.0.0.1 (a local process, a web page) could send this; only
    the authorization server knows the state, and RFC 6749 4.1.2.1 has it sent back with
    errors too. So the forged error gets 400 and the real answer still signs in."""
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    forged = await client.get(session.redirect_uri + "?" + query)
    assert forged.status_code == 400
    assert "cancelled or refused" not in forged.text and "forged" not in forged.text
    # a prefetch of the server's own refusal does not end the login either
    prefetch = await client.head(callback(session, error="access_denied", state=STATE))
    assert prefetch.status_code == 400
    await asyncio.sleep(0.05)
    assert not task.done()
    assert (await client.get(callback(session, code=CODE, state=STATE))).status_code == 200
    assert parse_qs(urlsplit(await task).query)["code"] == [CODE]


async def test_error_description_is_escaped(output: io.StringIO, client: httpx.AsyncClient) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    response = await client.get(
        callback(
            session,
            error="server_error",
            state=STATE,
            error_description="<script>alert(1)</script>\x1b[31m",
        )
    )
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;" in response.text
    with pytest.raises(AuthorizationError) as info:
        await task
    assert "\x1b" not in str(info.value)


async def test_host_header_must_be_loopback(output: io.StringIO, client: httpx.AsyncClient) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 is refused."""
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    response = await client.get(
        callback(session, code=CODE, state=STATE), headers={"Host": f"evil.example:{session.port}"}
    )
    assert response.status_code == 400
    assert not task.done()
    localhost = callback(session, code=CODE, state=STATE).replace("127.0.0.1", "localhost")
    assert (await client.get(localhost)).status_code == 200
    url = await task
    assert url.startswith(f"http://127.0.0.1:{session.port}/callback?")


def test_only_loopback_peers() -> None:
    assert is_loopback_peer(("127.0.0.1", 5000))
    assert is_loopback_peer(("127.9.8.7", 5000))
    assert is_loopback_peer(("::1", 5000, 0, 0))
    assert is_loopback_peer(("::ffff:127.0.0.1", 5000, 0, 0))
    assert not is_loopback_peer(("10.0.0.2", 5000))
    assert not is_loopback_peer(("192.168.1.9", 5000))
    assert not is_loopback_peer(("::ffff:10.0.0.2", 5000, 0, 0))
    assert not is_loopback_peer(None)
    assert not is_loopback_peer("127.0.0.1")


# -- timeout, cancel, flood --------------------------------------------------------------------


@pytest.mark.timeout(30)
async def test_a_session_closed_before_complete_says_so_at_once(output: io.StringIO) -> None:
    """Closed before use, nothing listens: the answer cannot arrive, so the login says so
    rather than waiting out its timeout."""
    session = await start(BrowserLogin(opener=opens, output=output))
    await session.aclose()
    with pytest.raises(NoBrowserError, match="cannot be received here"):
        await session.complete(AUTH_URL, state=STATE, timeout=3600)
    assert session.port is not None and not port_is_open(session.port)


@pytest.mark.timeout(60)
async def test_timeout_raises_and_closes(output: io.StringIO) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    with pytest.raises(AuthorizationError, match=r"did not finish within 0\.3 s"):
        await session.complete(AUTH_URL, state=STATE, timeout=0.3)
    assert session.port is not None and not port_is_open(session.port)
    assert not session.listening


async def test_cancel_propagates_and_closes(output: io.StringIO) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session, timeout=60)
    await wait_listening(session)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.port is not None and not port_is_open(session.port)
    assert "cancelled" in output.getvalue()


@pytest.mark.timeout(60)
async def test_cancel_with_idle_connections_open(output: io.StringIO) -> None:
    """Half-open connections (browser preconnects) must not hold the shutdown up: each is
    dropped at once, so no handler is left for the shutdown to wait on and then cancel."""
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session, timeout=60)
    await wait_listening(session)
    assert session.port is not None
    idle = [await asyncio.open_connection("127.0.0.1", session.port) for _ in range(5)]
    listener = session.listener
    assert listener is not None
    await eventually(lambda: len(listener.connections) >= 5, "the listener took 5 connections")
    handlers = list(listener.connections)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(h.done() and not h.cancelled() for h in handlers)  # ended, not stragglers
    for reader, writer in idle:
        assert await reader.read() == b""  # the listener closed it without an answer
        writer.close()


@pytest.mark.timeout(60)
async def test_flood_of_junk_does_not_stop_the_real_callback(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No head timeout ever frees a connection here: the real callback gets through while
    # every half-sent request still holds its connection, or the test hangs (and fails).
    monkeypatch.setattr("mcp_client_auth.login.listener.HEAD_TIMEOUT", 3600.0)
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session, timeout=3600)
    await wait_listening(session)
    port = session.port
    assert port is not None
    release = asyncio.Event()
    holding: list[None] = []

    async def slowloris() -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /callback?code=x HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
            await writer.drain()
            holding.append(None)
            await release.wait()
        finally:
            writer.close()

    async def garbage() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(os.urandom(2000) + b"\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    async def huge_header() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /callback HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n")
        try:
            await writer.drain()
            await reader.read()
        except ConnectionError:
            pass
        writer.close()

    limits = httpx.Limits(max_connections=500)
    async with httpx.AsyncClient(timeout=20, limits=limits, trust_env=False) as client:

        async def junk(i: int) -> None:
            kind = i % 4
            try:
                if kind == 0:
                    await client.get(callback(session, code=f"x{i}", state=f"wrong{i}"))
                elif kind == 1:
                    await client.get(session.redirect_uri.replace("/callback", f"/junk{i}"))
                elif kind == 2:
                    await client.get(callback(session, code=f"x{i}"))
                else:
                    await client.post(callback(session, code=f"x{i}", state=STATE))
            except httpx.HTTPError:
                pass

        hanging = [asyncio.ensure_future(slowloris()) for _ in range(50)]
        tasks = list(hanging)
        tasks += [asyncio.ensure_future(garbage()) for _ in range(20)]
        tasks += [asyncio.ensure_future(huge_header()) for _ in range(5)]
        tasks += [asyncio.ensure_future(junk(i)) for i in range(300)]
        # Every half-sent request holds its connection before the real callback comes (on a
        # busy machine some would otherwise still be connecting when the listener closes).
        await eventually(lambda: len(holding) == len(hanging), "the slowloris connections")
        assert not any(t.done() for t in hanging), [t.exception() for t in hanging if t.done()]
        real = await client.get(callback(session, code=CODE, state=STATE))
        assert real.status_code == 200
        url = await task
        assert not any(t.done() for t in hanging)  # all still holding their connections
        release.set()
        assert parse_qs(urlsplit(url).query)["code"] == [CODE]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- ports -------------------------------------------------------------------------------------


def _occupy() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    return holder, holder.getsockname()[1]


async def test_fixed_port_taken_is_a_clear_error(output: io.StringIO) -> None:
    holder, port = _occupy()
    with holder:
        with pytest.raises(PortInUseError) as info:
            await start(BrowserLogin(port=port, output=output))
        assert info.value.port == port
        message = str(info.value)
        assert f"port {port}" in message and "already in use" in message
        assert "redirect_port" in message
        with pytest.raises(PortInUseError):
            await start(BrowserLogin(output=output), redirect_port=port)


async def test_registered_port_taken_says_so(output: io.StringIO) -> None:
    holder, port = _occupy()
    with holder, pytest.raises(PortInUseError) as info:
        await start(BrowserLogin(output=output), f"http://127.0.0.1:{port}/callback")
    assert "stored client registration" in str(info.value)
    assert isinstance(info.value, AuthorizationError)


async def test_port_sources_in_order(output: io.StringIO, client: httpx.AsyncClient) -> None:
    holder, free = _occupy()
    holder.close()
    session = await start(BrowserLogin(port=free, output=output))
    assert session.port == free
    await session.aclose()
    session = await start(BrowserLogin(output=output), redirect_port=free)
    assert session.redirect_uri == f"http://127.0.0.1:{free}/callback"
    await session.aclose()
    # a stored loopback redirect URI wins over the configured port, spelled as stored
    stored = f"http://localhost:{free}/oauth/cb?tenant=7"
    session = await start(
        BrowserLogin(port=1, opener=opens, output=output), stored, redirect_port=2
    )
    assert session.redirect_uri == stored
    task = completing(session)
    await wait_listening(session)
    not_here = await client.get(f"http://127.0.0.1:{free}/callback?code=1&state={STATE}")
    assert not_here.status_code == 404
    answer = await client.get(f"http://127.0.0.1:{free}/oauth/cb?tenant=7&code=1&state={STATE}")
    assert answer.status_code == 200
    assert await task == f"http://localhost:{free}/oauth/cb?tenant=7&code=1&state={STATE}"
    with pytest.raises(ConfigurationError, match="two different loopback ports"):
        await start(BrowserLogin(port=free, output=output), redirect_port=free + 1)
    with pytest.raises(ConfigurationError):
        BrowserLogin(port=70000)


async def test_aclose_without_complete_releases_port(output: io.StringIO) -> None:
    session = await start(BrowserLogin(output=output))
    assert session.port is not None and port_is_open(session.port)
    await session.aclose()
    await session.aclose()
    assert not port_is_open(session.port)


def test_complete_on_another_loop(output: io.StringIO) -> None:
    """``start`` and ``complete`` may run on different loops (the sync portal, asyncio.run)."""
    session = asyncio.run(start(BrowserLogin(opener=opens, output=output)))

    async def run() -> str:
        task = completing(session)
        await wait_listening(session)
        async with httpx.AsyncClient(trust_env=False) as c:
            await c.get(callback(session, code=CODE, state=STATE))
        return await task

    assert CODE in asyncio.run(run())


# -- opening the browser, and the fallbacks ---------------------------------------------------


async def test_url_printed_before_browser_opens(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    seen: list[str] = []

    def opener(url: str) -> bool:
        seen.append(output.getvalue())
        assert url == AUTH_URL
        return True

    session = await start(BrowserLogin(opener=opener, output=output))
    task = completing(session)
    await wait_listening(session)
    await eventually(lambda: bool(seen), "the opener was called")
    assert AUTH_URL in seen[0]
    await client.get(callback(session, code=CODE, state=STATE))
    await task


async def test_opener_that_blocks_does_not_hold_the_login(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    """Some launchers only return when the browser closes; the answer must still count."""
    import threading

    release = threading.Event()
    session = await start(BrowserLogin(opener=lambda url: release.wait(10), output=output))
    task = completing(session)
    await wait_listening(session)
    await asyncio.sleep(0.05)
    await client.get(callback(session, code=CODE, state=STATE))
    assert CODE in await task
    release.set()


async def test_no_browser_and_no_terminal_is_a_clear_error(output: io.StringIO) -> None:
    session = await start(BrowserLogin(opener=never_opens, output=output))
    with pytest.raises(NoBrowserError, match="no browser could be opened"):
        await session.complete(AUTH_URL, state=STATE, timeout=5)
    text = output.getvalue()
    assert AUTH_URL in text and "Could not open a browser" in text
    assert session.port is not None and not port_is_open(session.port)


async def test_no_browser_falls_back_to_paste(output: io.StringIO) -> None:
    typed = io.StringIO()
    session = await start(BrowserLogin(opener=never_opens, output=output, input=typed))
    pasted = callback(session, code=CODE, state=STATE)
    typed.write("not a url at all\n" + pasted + "\n")
    typed.seek(0)
    url = await session.complete(AUTH_URL, state=STATE, timeout=5)
    assert url == pasted
    text = output.getvalue()
    assert "Could not open a browser" in text and "paste it here" in text
    assert "Try again" in text


async def test_paste_fallback_keeps_listening(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as stdin:  # nothing is ever typed
        try:
            session = await start(BrowserLogin(opener=never_opens, output=output, input=stdin))
            task = completing(session)
            await wait_listening(session)
            await asyncio.sleep(0.05)
            await client.get(callback(session, code=CODE, state=STATE))
            assert CODE in await task
        finally:
            os.close(write_fd)  # EOF ends the abandoned reader before its file is closed


async def test_open_browser_false_only_listens(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    calls: list[str] = []
    login = BrowserLogin(
        open_browser=False, opener=lambda url: bool(calls.append(url)), output=output
    )
    assert not login.browser_available()
    session = await start(login)
    task = completing(session)
    await wait_listening(session)
    await client.get(callback(session, code=CODE, state=STATE))
    assert CODE in await task
    assert calls == []
    assert "Opening your browser" not in output.getvalue()


async def test_non_loopback_redirect_uri_uses_paste(output: io.StringIO) -> None:
    uri = "https://app.example/oauth/callback"
    login = BrowserLogin(
        opener=opens, output=output, input=io.StringIO(f"{uri}?code={CODE}&state={STATE}\n")
    )
    session = await start(login, uri)
    assert session.redirect_uri == uri and session.port is None
    assert await session.complete(AUTH_URL, state=STATE, timeout=5) == (
        f"{uri}?code={CODE}&state={STATE}"
    )
    with pytest.raises(AuthorizationError, match="not a loopback address"):
        await start(BrowserLogin(opener=opens, output=output), uri)


def test_browser_available(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BrowserLogin(opener=opens).browser_available()
    assert not BrowserLogin(open_browser=False, opener=opens).browser_available()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert not system_browser_available()  # a console browser would take the terminal
    assert not BrowserLogin().browser_available()
    monkeypatch.setenv("BROWSER", "my-browser")
    assert system_browser_available()


# -- the terminal ------------------------------------------------------------------------------


async def test_status_line_on_a_terminal(
    tty_output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=tty_output))
    task = completing(session, timeout=125)
    await wait_listening(session)

    def shown() -> list[int]:  # the countdown's values so far, in seconds
        found = re.findall(r"(\d+):(\d\d) left", tty_output.getvalue())
        return [int(minutes) * 60 + int(seconds) for minutes, seconds in found]

    # Until it has ticked once: the countdown starts after the browser is opened (a thread
    # hop, which a busy machine can stretch past a second, so "2:05" may never be drawn).
    await eventually(lambda: len(set(shown())) >= 2, "the countdown ticked")
    await client.get(callback(session, code=CODE, state=STATE))
    await task
    text = tty_output.getvalue()
    assert "\r\x1b[2K" in text
    values = shown()
    assert 120 <= values[0] <= 125, text  # counting down from the 125 s timeout
    assert values == sorted(values, reverse=True) and values[-1] < values[0], values
    assert text.endswith("Received the sign-in answer from your browser.\n")


async def test_plain_lines_when_not_a_terminal(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session, timeout=125)
    await wait_listening(session)
    await asyncio.sleep(1.2)
    await client.get(callback(session, code=CODE, state=STATE))
    await task
    text = output.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.count("Waiting for the sign-in") == 1


async def test_session_is_single_use(output: io.StringIO, client: httpx.AsyncClient) -> None:
    session = await start(BrowserLogin(opener=opens, output=output))
    task = completing(session)
    await wait_listening(session)
    await client.get(callback(session, code=CODE, state=STATE))
    await task
    with pytest.raises(AuthorizationError, match="already used"):
        await session.complete(AUTH_URL, state=STATE, timeout=1)


async def test_no_system_browser_falls_back_to_paste(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: bool(opened.append(url)))
    typed = io.StringIO()
    login = BrowserLogin(output=output, input=typed)
    assert not login.browser_available()
    session = await start(login)
    typed.write(callback(session, code=CODE, state=STATE) + "\n")
    typed.seek(0)
    assert CODE in await session.complete(AUTH_URL, state=STATE, timeout=5)
    assert opened == []  # no console browser was started in the terminal
    assert "Could not open a browser" in output.getvalue()


async def test_device_fallback_ui(output: io.StringIO) -> None:
    """The flow may fall back to the device grant; BrowserLogin then shows the code."""
    login = BrowserLogin(output=output)
    login.show("https://as.example/device", "ABCD-EFGH", None, 300)
    await login.wait(0)
    text = output.getvalue()
    assert text.lstrip().startswith(DEVICE_FALLBACK_NOTE)  # why, before the instructions
    assert "https://as.example/device" in text and "ABCD-EFGH" in text
    assert "Waiting for you to approve" in text


async def test_a_callback_the_flow_refuses_shows_refused_not_signed_in(
    output: io.StringIO, client: httpx.AsyncClient
) -> None:
    """The flow's check (here: RFC 9207 iss) runs before the page: no "Signed in" for an
    answer that will be refused; a HEAD prefetch of it does not end the login."""
    session = await start(BrowserLogin(opener=opens, output=output))

    def check(url: str) -> None:
        if parse_qs(urlsplit(url).query).get("iss") != ["https://as.example"]:
            raise AuthorizationError("the authorization response came from another issuer")

    session.check_callbacks_with(check)
    task = completing(session)
    await wait_listening(session)
    wrong = callback(session, code=CODE, state=STATE, iss="https://evil.example")
    head = await client.head(wrong)
    assert head.status_code == 400 and not task.done()
    response = await client.get(wrong)
    assert response.status_code == 400
    assert "Sign-in refused" in response.text and "Signed in" not in response.text
    assert "evil.example" not in response.text and CODE not in response.text
    with pytest.raises(AuthorizationError, match="another issuer"):
        await task
