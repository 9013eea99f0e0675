"""Login strategies for the interactive authorization step."""

from __future__ import annotations

from .base import CallbackLogin, Login, LoginSession

__all__ = ["CallbackLogin", "Login", "LoginSession"]
