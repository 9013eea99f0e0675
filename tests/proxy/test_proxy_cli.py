"""``mcp-client-auth proxy`` on the command line: unusable options are usage errors (exit 2)
that say what is wrong, with nothing on stdout (a host would read it as protocol)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import console_script


def run_proxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script(), "proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ftp://x.example/mcp"], "https://"),
        (["http://x.example/mcp"], "--allow-http"),
        (["https://x.example/mcp", "--header", "no-colon"], "NAME:VALUE"),
        (["https://x.example/mcp", "--header", "X-A:$PROXY_TEST_UNSET"], "PROXY_TEST_UNSET"),
        (["https://x.example/mcp", "--header", "Authorization: Bearer x"], "Authorization"),
        (["https://x.example/mcp", "--client-secret", "$PROXY_TEST_UNSET"], "PROXY_TEST_UNSET"),
        (["https://x.example/mcp", "--port", "70000"], "--port"),
        (["https://x.example/mcp", "--transport", "carrier-pigeon"], "--transport"),
    ],
)
def test_unusable_options_are_usage_errors(args: list[str], says: str) -> None:
    run = run_proxy(*args)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert says in run.stderr


def test_the_proxy_is_listed_in_the_tools_help() -> None:
    run = subprocess.run([*console_script(), "--help"], capture_output=True, text=True, timeout=60)
    assert "proxy" in run.stdout


def test_check_against_a_server_that_is_down_names_the_url_not_an_unexpected_error(
    tmp_path: Path,
) -> None:
    """``--check`` is how a user tries a host configuration: a server that is not there is
    the likeliest answer, and it says so (exit 1) rather than "unexpected ConnectError"."""
    import socket

    with socket.socket() as unused:  # a port nobody listens on (bound, never listening)
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/mcp"
        run = run_proxy("--check", url, "--store", str(tmp_path))
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "unexpected" not in run.stderr
    assert f"could not reach {url}" in run.stderr
