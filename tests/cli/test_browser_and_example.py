"""The default browser login, ``token --login``, and ``examples/cli_tool.py``.

The browser is a stand-in named by ``$BROWSER`` (the user's explicit choice, which the login
honours): it GETs the authorization URL and follows the redirects to the tool's loopback
listener, as a browser does when consent is automatic.

``examples/cli_tool.py`` runs here against the demo servers (``--demo``, and sharing the CLI's
login); ``tests/integration/test_examples.py`` runs it against the real authorization server and
the ``mcp`` SDK's MCP server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from demo_servers import DemoServers

from .conftest import CLI, TIMEOUT

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cli_tool.py"

FAKE_BROWSER = """
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.open(sys.argv[1], timeout=30).read()
"""


@pytest.fixture
def browser(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "fake_browser.py"
    script.write_text(FAKE_BROWSER)
    return {"BROWSER": f"{sys.executable} {script} %s"}


def test_login_with_the_browser(cli: CLI, demo: DemoServers, browser: dict[str, str]) -> None:
    run = cli("login", demo.mcp_url, env=browser)
    assert run.returncode == 0, run.output
    assert run.stdout == ""
    assert f"Logged in to {demo.mcp_url}" in run.stderr
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None
    assert record.client is not None and record.client.redirect_uri is not None
    assert record.client.redirect_uri.startswith("http://127.0.0.1:")


def test_token_login_only_when_asked(cli: CLI, demo: DemoServers, browser: dict[str, str]) -> None:
    refused = cli("token", demo.mcp_url, env=browser)
    assert refused.returncode == 1 and refused.stdout == ""
    assert demo.authorization_server.stats["authorizations"] == 0  # no browser was opened

    run = cli("token", demo.mcp_url, "--login", env=browser)
    assert run.returncode == 0, run.output
    record = cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None
    assert run.stdout == record.tokens.access_token + "\n"  # the login talked on stderr only
    assert demo.authorization_server.stats["authorizations"] == 1


def run_example(cli: CLI, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=cli.env,
        cwd=cli.home.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_example_tool_with_demo_servers(cli: CLI) -> None:
    listed = run_example(cli, "--demo")
    assert listed.returncode == 0, listed.stderr
    assert "echo" in listed.stdout.split()
    called = run_example(cli, "--demo", "add", "a=2", "b=3")
    assert (called.returncode, called.stdout) == (0, "5\n"), called.stderr


def test_example_tool_shares_the_cli_login(cli: CLI, demo: DemoServers) -> None:
    not_yet = run_example(cli, "--no-login", demo.mcp_url)
    assert not_yet.returncode == 1
    assert f"mcp-client-auth login {demo.mcp_url}" in not_yet.stderr

    assert cli.login(demo.mcp_url).returncode == 0
    called = run_example(cli, "--no-login", demo.mcp_url, "echo", "text=shared login")
    assert (called.returncode, called.stdout) == (0, "shared login\n"), called.stderr
    assert demo.authorization_server.stats["authorizations"] == 1  # the CLI's, reused
