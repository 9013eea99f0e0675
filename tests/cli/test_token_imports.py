"""``token`` with a valid stored token imports only what reading the store needs.

Why: ``token`` runs in shell prompts and ``$(...)`` loops, where its cost is a whole process.
The goal (measured by ``tests/cli/bench_token.py`` and ``benchmarks/run.py``) is at most
``import httpx``'s time. That holds only if neither the CLI nor the package's ``__init__``
imports httpx, asyncio, the MCP SDK, pydantic or py-key-value-aio on that path.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from mcp_client_auth import ServerRecord, TokenSet, TokenStore

from .conftest import CLI, TIMEOUT, console_script

URL = "https://mcp.example.com/mcp"
HEAVY = {"httpx", "httpx2", "asyncio", "anyio", "mcp", "pydantic", "key_value", "keyring"}


@pytest.fixture
def valid_token(cli: CLI) -> str:
    tokens = TokenSet("at-" + "x" * 40, expires_at=time.time() + 3600, refresh_token="rt-y")
    record = ServerRecord(URL, issuer="https://as.example.com", tokens=tokens)
    asyncio.run(TokenStore.default(cli.home).put(record))
    return tokens.access_token


def imported(argv: list[str], cli: CLI, *, whole: bool = False) -> tuple[str, set[str]]:
    """What ``argv`` printed, and the top-level packages it imported (whole module names with
    ``whole``)."""
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=cli.env,
        cwd=cli.home.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return proc.stdout, modules if whole else {name.split(".")[0] for name in modules}


def test_the_whole_token_process_imports_nothing_heavy(cli: CLI, valid_token: str) -> None:
    for argv in (
        [sys.executable, "-m", "mcp_client_auth", "token", URL],
        [sys.executable, *console_script()[-1:], "token", URL]
        if console_script()[0] != sys.executable
        else [sys.executable, "-m", "mcp_client_auth", "token", URL],
    ):
        stdout, names = imported(argv, cli)
        assert stdout == valid_token + "\n"
        assert not names & HEAVY, sorted(names & HEAVY)


# What only the other commands, the refresh or a login need: the CLI imports a command's module
# only when that command runs, and the library's login and flow machinery only on the slow path.
SLOW_PATH = (
    "mcp_client_auth.cli.login",
    "mcp_client_auth.cli.status",
    "mcp_client_auth.cli.logout",
    "mcp_client_auth.cli.doctor",
    "mcp_client_auth.cli.describe",
    "mcp_client_auth.login",
    "mcp_client_auth.provider",
    "mcp_client_auth.flow",
)


def test_token_imports_no_other_command_and_no_login_machinery(cli: CLI, valid_token: str) -> None:
    stdout, modules = imported(
        [sys.executable, "-m", "mcp_client_auth", "token", URL], cli, whole=True
    )
    assert stdout == valid_token + "\n"
    assert "mcp_client_auth.cli.token" in modules
    slow = sorted(m for m in modules if m.startswith(SLOW_PATH))
    assert not slow, slow
