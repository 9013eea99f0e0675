"""Fixtures for the real-client and example tests (see ``harness.py``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet

from .harness import Stack, mcp_v1_python, start_redis, start_stack

StartStack = Callable[..., Stack]


@pytest.fixture(scope="session")
def store_key() -> str:
    """The token stores' key (``MCP_CLIENT_AUTH_KEY``): no keyring, no key file."""
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def mcp_v1() -> str:
    """The python of the mcp 1.x environment (``$MCP_V1_PYTHON``, else made once and cached)."""
    return mcp_v1_python()


@pytest.fixture
def mcp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartStack]:
    """Factory: the real authorization server + the integration MCP server, stopped after."""
    started: list[Stack] = []

    def start(**knobs: str) -> Stack:
        stack = start_stack(tmp_path_factory.mktemp("stack"), **knobs)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
