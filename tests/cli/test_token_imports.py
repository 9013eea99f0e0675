"""``token`` with a valid stored token imports only what reading the store needs.

Why: ``token`` runs in shell prompts and ``$(...)`` loops, where its cost is a whole process.
The goal (issue 5; figures from ``tests/cli/bench_token.py``) is at most ``import httpx``'s
time. That holds only if neither the CLI nor the package's ``__init__`` imports httpx,
asyncio, the MCP SDK, pydantic or py-key-value-aio on that path.
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


def imported(argv: list[str], cli: CLI) -> tuple[str, set[str]]:
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=cli.env,
        cwd=cli.home.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    names = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return proc.stdout, names


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
