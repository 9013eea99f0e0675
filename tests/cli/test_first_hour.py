"""What a new user meets in the first hour with the command-line tool, tried as they tried it.

What is proved: with no browser and no terminal, ``login`` names the tool's own options
(``--paste``, ``--device``, ``--port``), not the library's classes; every "log in" hint names
the store the user chose (``--store``), and following a hint word for word logs in where the
tokens are then found.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from demo_servers import DemoServers

from mcp_client_auth import LoginRequiredError, OAuthClientProvider, TokenStore

from .conftest import CLI

pytestmark = pytest.mark.integration

NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "BROWSER": ""}


def hinted_command(text: str) -> list[str]:
    """The command a message tells the user to run (```run `...```), as argv words."""
    found = re.search(r"run `([^`]+)`", text)
    assert found, text
    return shlex.split(found.group(1))


def test_login_without_browser_or_terminal_names_the_cli_options(
    cli: CLI, demo: DemoServers
) -> None:
    run = cli("login", demo.mcp_url, input="", env=NO_DISPLAY)
    assert run.returncode == 1, run.output
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no browser could be opened"), run.stderr
    for option in ("--paste", "--device", "--port"):
        assert option in last, last
    assert "DeviceLogin" not in run.stderr and "PasteLogin" not in run.stderr
    assert "callable" not in run.stderr


def test_token_hint_names_the_store_and_following_it_works(
    cli: CLI, demo: DemoServers, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    run = cli("--store", str(elsewhere), "token", demo.mcp_url)
    assert run.returncode == 1, run.output
    words = hinted_command(run.stderr)
    assert words[:2] == ["mcp-client-auth", "login"], words
    assert words[words.index("--store") + 1] == str(elsewhere.resolve()), words

    # the user runs exactly that (with --paste: no browser here), then asks again
    login = cli.login(words[-1], *words[2:-1])
    assert login.returncode == 0, login.output
    again = cli("--store", str(elsewhere), "token", demo.mcp_url)
    assert again.returncode == 0, again.output
    assert cli.record(demo.mcp_url) is None  # nothing went to the default store


def test_status_hint_of_the_default_store_has_no_store_option(cli: CLI, demo: DemoServers) -> None:
    run = cli("status", demo.mcp_url)
    assert run.returncode == 1, run.output
    assert hinted_command(run.stdout) == ["mcp-client-auth", "login", demo.mcp_url]


def test_the_library_hint_names_the_store_folder(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path / "store")
    provider = OAuthClientProvider("http://127.0.0.1:9/mcp", store=store, interactive=False)
    with pytest.raises(LoginRequiredError) as caught:
        provider.get_token()
    words = hinted_command(str(caught.value))
    assert words == [
        "mcp-client-auth",
        "login",
        "--store",
        str((tmp_path / "store").resolve()),
        "http://127.0.0.1:9/mcp",
    ]

    memory = OAuthClientProvider(
        "http://127.0.0.1:9/mcp", store=TokenStore.memory(), interactive=False
    )
    with pytest.raises(LoginRequiredError, match=r"log in with this store"):
        memory.get_token()
