"""Terminal helpers: a cancelled read on a real terminal must not eat the user's next line."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading

import pytest

from mcp_client_auth.login.terminal import StatusLine, read_line


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
async def test_cancelled_read_on_a_tty_leaves_the_next_line() -> None:
    import pty

    master, slave = pty.openpty()
    with open(slave, encoding="utf-8", closefd=True) as tty:
        assert tty.isatty()
        before = set(threading.enumerate())
        task = asyncio.ensure_future(read_line(tty))
        await asyncio.sleep(0.1)
        readers = set(threading.enumerate()) - before
        assert readers, "read_line reads in a thread of its own"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The reader thread notices the stop flag and exits: waited for, not slept on (a
        # busy machine can take longer than its 0.2 s select to get back to the flag).
        for reader in readers:
            await asyncio.to_thread(reader.join, 30)
            assert not reader.is_alive(), "the cancelled read's thread is still reading"
        os.write(master, b"typed later\n")
        assert await asyncio.wait_for(read_line(tty), 5) == "typed later\n"
    os.close(master)


async def test_read_line_end_of_input() -> None:
    assert await read_line(io.StringIO("one\n")) == "one\n"
    assert await read_line(io.StringIO("")) is None


def test_status_line_note_keeps_the_live_line() -> None:
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = TTY()
    status = StatusLine(out)
    status.show("waiting 0:10")
    status.note("something happened")
    assert out.getvalue() == (
        "\r\x1b[2Kwaiting 0:10\r\x1b[2Ksomething happened\n\r\x1b[2Kwaiting 0:10"
    )
    status.clear()
    assert out.getvalue().endswith("\r\x1b[2K")


def test_status_line_survives_a_closed_output() -> None:
    out = io.StringIO()
    out.close()
    StatusLine(out, live=False).show("x")  # no exception
