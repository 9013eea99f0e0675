"""Login strategies for the interactive authorization step.

The public names are imported on first use (PEP 562), like the package's own: a process that
reconnects with a stored token never logs in, so importing ``login.base`` (the effects and the
provider need its types) must not import the browser, device and paste strategies with their
``asyncio``, ``webbrowser`` and page templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .base import CallbackLogin, Login, LoginSession, UseDeviceFlow
    from .browser import BrowserLogin, BrowserLoginSession, NoBrowserError, PortInUseError
    from .device import DeviceLogin
    from .paste import PasteLogin

_WHERE = {
    "BrowserLogin": ".browser",
    "BrowserLoginSession": ".browser",
    "CallbackLogin": ".base",
    "DeviceLogin": ".device",
    "Login": ".base",
    "LoginSession": ".base",
    "NoBrowserError": ".browser",
    "PasteLogin": ".paste",
    "PortInUseError": ".browser",
    "UseDeviceFlow": ".base",
}

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
    "UseDeviceFlow",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
