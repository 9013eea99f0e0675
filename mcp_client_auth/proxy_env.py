"""Whether the environment sends HTTP through a proxy (``HTTP_PROXY`` and its kin).

Two places ask: the proxy command, which keeps httpx's own transport where a proxy is named so
that ``HTTPS_PROXY`` and ``NO_PROXY`` keep their exact httpx meaning; and the flow's clients,
which may reach even a plain-http URL over TLS when the named proxy is an https one.
"""

from __future__ import annotations

import urllib.request

__all__ = ["environment_names_a_proxy"]


def environment_names_a_proxy() -> bool:
    """Whether ``HTTP_PROXY``, ``HTTPS_PROXY`` or ``ALL_PROXY`` (any case) is set."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))
