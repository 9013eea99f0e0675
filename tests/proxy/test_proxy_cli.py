"""``mcp-client-auth proxy`` on the command line: unusable options are usage errors (exit 2)
that say what is wrong, with nothing on stdout (a host would read it as protocol)."""

from __future__ import annotations

import subprocess

import pytest

from tests.cli.conftest import console_script


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
    run = subprocess.run(
        [*console_script(), "proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert says in run.stderr


def test_the_proxy_is_listed_in_the_tools_help() -> None:
    run = subprocess.run([*console_script(), "--help"], capture_output=True, text=True, timeout=60)
    assert "proxy" in run.stdout
