"""The entry point, the parser and the output rules, run in-process (``main(argv, streams=)``).

What is proved: a usage error is one line on stderr naming ``--help``, exit 2, for the tool
and for each command (the proxy's own checks included); ``--help`` is the only thing on stdout
and exits 0; colour appears only on a terminal and never with ``NO_COLOR`` (taken from the
environment the run is handed); Ctrl+C is exit 130 and "cancelled"; a reader that goes away
ends the run quietly with 1; an unexpected error is one line, with the traceback only under
``--debug``; the library's logging is put back as it was after each run.
"""

from __future__ import annotations

import io
import logging

import pytest

from .inprocess import URL, InProcess, Terminal


@pytest.mark.parametrize(
    ("argv", "said", "prog"),
    [
        ((), "give a command: login, token, status, logout or doctor", "mcp-client-auth"),
        (("frobnicate",), "invalid choice: 'frobnicate'", "mcp-client-auth"),
        (("token",), "the following arguments are required: URL", "mcp-client-auth token"),
        (("token", "ftp://x.example.com/mcp"), "ftp", "mcp-client-auth token"),
        (("status", "--store", " "), "--store needs a folder", "mcp-client-auth status"),
        (("logout",), "give the URL to log out of, or --all", "mcp-client-auth logout"),
        (("logout", URL, "--all"), "give a URL or --all, not both", "mcp-client-auth logout"),
        (("login", URL, "--client-secret-stdin"), "needs --client-id", "mcp-client-auth login"),
        (("login", URL, "--port", "0"), "between 1 and 65535, not 0", "mcp-client-auth login"),
        (
            ("login", URL, "--port", "8", "--device"),
            "no use with --device",
            "mcp-client-auth login",
        ),
        (("login", URL, "--paste", "--device"), "not allowed with", "mcp-client-auth login"),
        (("proxy", URL, "--port", "70000"), "not 70000", "mcp-client-auth proxy"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    run_cli: InProcess, argv: tuple[str, ...], said: str, prog: str
) -> None:
    ran = run_cli(*argv)
    assert (ran.code, ran.stdout) == (2, "")
    line = ran.error
    assert said in line and line.endswith(f"(see `{prog} --help`)"), line


def test_help_goes_to_stdout_and_exits_0(run_cli: InProcess) -> None:
    ran = run_cli("--help")
    assert (ran.code, ran.stderr) == (0, "")
    assert ran.stdout.startswith("usage: mcp-client-auth")
    for command in ("login", "token", "status", "logout", "doctor", "proxy"):
        assert command in ran.stdout
    token = run_cli("token", "--help")
    assert token.code == 0 and "--header" in token.stdout and "--login" in token.stdout


def test_colour_only_on_a_terminal_and_never_with_no_color(run_cli: InProcess) -> None:
    painted = run_cli("token", URL, stderr=Terminal(), env={"NO_COLOR": "", "TERM": "xterm"})
    assert painted.code == 1
    assert painted.stderr.startswith("\x1b[31merror:\x1b[0m not logged in to " + URL)
    plain = run_cli("token", URL, stderr=Terminal(), env={"NO_COLOR": "1"})
    assert plain.stderr.startswith("error: not logged in to " + URL)
    dumb = run_cli("token", URL, stderr=Terminal(), env={"NO_COLOR": "", "TERM": "dumb"})
    assert "\x1b[" not in dumb.stderr


class _CtrlC(io.StringIO):
    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_is_exit_130_and_one_word(run_cli: InProcess) -> None:
    from mcp_client_auth.cli import main
    from mcp_client_auth.cli.output import Streams

    out, err = io.StringIO(), io.StringIO()
    argv = ["login", URL, "--client-id", "app", "--client-secret-stdin"]
    assert main(argv, streams=Streams(out, err, _CtrlC(), {})) == 130
    assert (out.getvalue(), err.getvalue()) == ("", "\nerror: cancelled\n")


class _Gone(io.StringIO):
    """stdout whose reader went away (``| head`` finished)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise RuntimeError("the stream broke")


def test_a_reader_that_goes_away_ends_the_run_quietly(run_cli: InProcess) -> None:
    ran = run_cli("status", stdout=_Gone())
    assert (ran.code, ran.stderr) == (1, "")


def test_an_unexpected_error_is_one_line_with_the_details_under_debug(run_cli: InProcess) -> None:
    ran = run_cli("status", stdout=_Broken())
    assert ran.code == 1
    assert ran.error == (
        "error: unexpected RuntimeError: the stream broke "
        "(run `mcp-client-auth --debug ...` for the details)"
    )
    debug = run_cli("--debug", "status", stdout=_Broken())
    assert debug.code == 1
    assert "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == "error: unexpected RuntimeError: the stream broke"


def test_the_library_logging_is_put_back_after_a_run(run_cli: InProcess) -> None:
    library = logging.getLogger("mcp_client_auth")
    before = (list(library.handlers), library.level, library.propagate)
    httpx = logging.getLogger("httpx")
    httpx_before = (list(httpx.handlers), httpx.level)
    run_cli("--debug", "status")
    run_cli("token", URL)
    assert (list(library.handlers), library.level, library.propagate) == before
    assert (list(httpx.handlers), httpx.level) == httpx_before


def test_python_m_and_the_console_script_run_the_same_main() -> None:
    import mcp_client_auth.__main__ as module_main
    from mcp_client_auth import cli

    assert module_main.main is cli.main
