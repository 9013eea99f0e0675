"""The quickstart, the README's main command, run as a user runs it: a subprocess.

Why a subprocess: the claims the quickstart prints (logged in, tokens reused with no login and
no discovery, a silent refresh, step-up) are the project's promise in one screen; they are
checked here as printed, with the same interpreter, a temporary store folder and no network.
Steps 2 and 3 are a restart: the quickstart runs them in a child process of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth import TokenStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.py"

# Plays the user's browser for --browser: opens the consent page, clicks Approve, and follows
# the redirect to the client's loopback listener, as a browser would.
FAKE_BROWSER = """
import re, sys, urllib.parse, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url = sys.argv[1]
page = opener.open(url, timeout=10).read().decode()
request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
origin = url.split("/authorize")[0]
form = urllib.parse.urlencode({"request_id": request_id, "decision": "approve"}).encode()
opener.open(origin + "/authorize/decision", data=form, timeout=10).read()
"""


def run_quickstart(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[str, Path, dict[str, str]]:
    """Run the quickstart; its stdout+stderr flattened to one line, the store, the env."""
    home = tmp_path / "home"
    full_env = {
        **os.environ,
        # The user's own store: the quickstart must leave it alone.
        "MCP_CLIENT_AUTH_HOME": str(home),
        # A key from the environment: the test touches neither the keyring nor config folders.
        "MCP_CLIENT_AUTH_KEY": Fernet.generate_key().decode(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if env is None or "BROWSER" not in env:
        full_env.pop("BROWSER", None)  # the default mode must not need a browser
    proc = subprocess.run(
        [sys.executable, str(QUICKSTART), *args],
        env=full_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=100,  # under pytest-timeout's 120 s, so the failure says what timed out
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return " ".join(output.split()), home, full_env


def steps(flat: str) -> list[str]:
    """The output cut at the numbered steps: [preamble, step 1, step 2, step 3, step 4]."""
    parts = re.split(r" (?=[1-4]\. [A-Z])", flat)
    assert len(parts) == 5, flat
    return parts


def check_walk_through(flat: str) -> None:
    _, first, second, third, fourth = steps(flat)

    assert "add(2, 3) = 5" in first
    assert "Logged in" in first
    assert "1 registration" in first
    assert "1 login" in first
    assert re.search(r"[1-9]\d* metadata requests?", first), first

    assert "echo('hello again') = hello again" in second
    match = re.search(
        r"Reused the stored tokens: (\d+) HTTP requests?, all to the MCP server; "
        r"0 logins, 0 discovery requests, 0 token requests",
        second,
    )
    assert match, second
    assert int(match.group(1)) >= 1
    # a restart: the step ran in another process than the one that logged in
    pids = re.search(r"\(Process (\d+), not this one, (\d+);", second)
    assert pids and pids.group(1) != pids.group(2), second

    assert "add(40, 2) = 42" in third
    assert "Refreshed silently before sending: 1 refresh, 0 logins" in third
    assert "rotated, and the new one stored" in third
    assert "1 token, from the restarted process" in third
    assert "discovery" not in third  # the stored metadata was enough

    assert "whoami() = subject demo-user" in fourth
    assert "mcp:profile" in fourth
    assert "403 insufficient_scope" in fourth
    assert "1 login" in fourth

    assert "eyJ" not in flat  # no JWT access token was printed


def test_quickstart_runs_on_embedded_defaults(tmp_path: Path) -> None:
    """As the README runs it: a store of its own, with a key of its own, both gone at the end;
    the user's store (``MCP_CLIENT_AUTH_HOME``) and key folder are left as they were."""
    temp, config = tmp_path / "tmp", tmp_path / "config"
    temp.mkdir()
    flat, home, _ = run_quickstart(
        tmp_path,
        env={
            "TMPDIR": str(temp),
            "XDG_CONFIG_HOME": str(config),
            "MCP_CLIENT_AUTH_KEY": "",  # the key is made and kept as for a user (a key file)
            "DBUS_SESSION_BUS_ADDRESS": "",
        },
    )
    check_walk_through(flat)
    assert "approved automatically" in flat
    # No secret-looking string at all: no authorization URL is printed in this mode either.
    assert not re.search(r"[A-Za-z0-9_\-]{40,}", flat), flat
    used = re.search(r"encrypted files in (\S+?);", flat)
    assert used, flat
    assert Path(used.group(1)).parent == temp.resolve()
    assert "key file" in flat  # no keyring here: a key file was made...
    assert list(temp.iterdir()) == []  # ...and removed with the store
    assert list((config / "mcp-client-auth" / "keys").iterdir()) == []
    assert not home.exists()
    assert "removed with its temporary store and key" in flat


def test_quickstart_keeps_no_token_in_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --keep the final tokens stay in the store: read them back and look for them."""
    if not hasattr(TokenStore, "default"):
        pytest.skip("no disk store in this checkout")
    flat, home, env = run_quickstart(tmp_path, "--keep", "--home", str(tmp_path / "home"))
    check_walk_through(flat)
    mcp_url = re.search(r"demo MCP server (\S+)", flat)
    assert mcp_url
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", env["MCP_CLIENT_AUTH_KEY"])
    record = asyncio.run(TokenStore.default(home).get(mcp_url.group(1)))
    assert record is not None and record.tokens is not None
    assert record.tokens.refresh_token
    assert record.tokens.access_token not in flat
    assert record.tokens.refresh_token not in flat
    assert "kept in the store" in flat


def test_quickstart_with_browser_consent(tmp_path: Path) -> None:
    """--browser: the default BrowserLogin opens $BROWSER, which clicks Approve."""
    browser = tmp_path / "fake_browser.py"
    browser.write_text(FAKE_BROWSER)
    flat, _, _ = run_quickstart(
        tmp_path, "--browser", env={"BROWSER": f"{sys.executable} {browser} %s"}
    )
    check_walk_through(flat)
    assert "click Approve" in flat
