"""Login strategies for the interactive authorization step."""

from __future__ import annotations

from .base import CallbackLogin, Login, LoginSession
from .browser import BrowserLogin, BrowserLoginSession, NoBrowserError, PortInUseError
from .device import DeviceLogin
from .paste import PasteLogin

__all__ = [
    "BrowserLogin",
    "BrowserLoginSession",
    "CallbackLogin",
    "DeviceLogin",
    "Login",
    "LoginSession",
    "NoBrowserError",
    "PasteLogin",
    "PortInUseError",
]
