"""``--allow-http``: the command-line opt-in for a plain-http server off this machine.

Without it (or ``MCP_CLIENT_AUTH_INSECURE_HTTP=1``), ``login``, ``token`` and ``logout`` refuse
such a URL as a usage error that names the URL and the opt-in, before the store is read or
anything is sent; loopback http needs no opt-in.
"""

from __future__ import annotations

import pytest

from .conftest import CLI

REMOTE_HTTP = "http://mcp.example.com/mcp"


@pytest.mark.parametrize(
    "args",
    [
        ["token", REMOTE_HTTP],
        ["login", REMOTE_HTTP, "--paste"],
        ["logout", REMOTE_HTTP],
        ["token", "HTTP://MCP.EXAMPLE.COM:80/mcp"],
    ],
)
def test_plain_http_off_loopback_is_a_usage_error(cli: CLI, args: list[str]) -> None:
    run = cli(*args)
    assert run.returncode == 2, run.output
    assert run.stdout == ""
    assert REMOTE_HTTP in run.stderr and "--allow-http" in run.stderr
    assert "MCP_CLIENT_AUTH_INSECURE_HTTP=1" in run.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["token", REMOTE_HTTP, "--allow-http"], {}),
        (["--allow-http", "token", REMOTE_HTTP], {}),
        (["token", REMOTE_HTTP], {"MCP_CLIENT_AUTH_INSECURE_HTTP": "1"}),
        (["token", "http://127.0.0.1:9/mcp"], {}),  # loopback: no opt-in needed
        (["token", "http://[::1]:9/mcp"], {}),
    ],
)
def test_the_opt_in_or_loopback_gets_past_the_check(
    cli: CLI, args: list[str], env: dict[str, str]
) -> None:
    run = cli(*args, env=env)
    assert run.returncode == 1, run.output  # and then: nothing stored for it
    assert "not logged in" in run.stderr


def test_logout_with_the_opt_in_gets_past_the_check(cli: CLI) -> None:
    run = cli("logout", REMOTE_HTTP, "--allow-http")
    assert run.returncode == 0, run.output
    assert "nothing to log out of" in run.stderr.lower()
