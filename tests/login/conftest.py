"""Shared fixtures for the login tests."""

from __future__ import annotations

import io

import pytest


class TTYStringIO(io.StringIO):
    """A StringIO that says it is a terminal, to exercise the live status line."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty_output() -> io.StringIO:
    return TTYStringIO()


@pytest.fixture
def no_stdin_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is not a terminal (as under CI), whatever pytest does with it."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
