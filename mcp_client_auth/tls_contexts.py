"""The TLS contexts of the provider's own clients: built once per process, and only when a
request needs one.

Building a context that verifies servers means parsing a whole CA bundle, and a refresh runs
while it holds the store's lock, so every process waiting for the new token would wait for
that parse too. The context is therefore made on the first request to an https URL and kept
for every flow client after it (a long-lived process refreshes hourly), for as long as the CA
files it was built from are unchanged: a bundle rewritten, or a folder whose list of files
changed, is loaded again by the next client. A request to a
plain-http URL (an authorization server on this machine, say) is sent with a context that
loads no CA at all and so can complete no TLS handshake: where a request does turn to TLS, it
fails closed rather than unverified.

The context is the one the library itself would build for ``verify=`` (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` honoured), so behaviour is what ``httpx.Client(verify=...)`` gives. The
proxy command's own transport shares it.
"""

from __future__ import annotations

import os
import ssl
import threading
from types import ModuleType

from .proxy_env import environment_names_a_proxy

__all__ = ["context_for", "loads_cas_for", "verifying_context"]

_lock = threading.Lock()
_verifying: dict[tuple[object, ...], ssl.SSLContext] = {}
_trusting_nothing: list[ssl.SSLContext] = []

Verify = ssl.SSLContext | str | bool


def context_for(url: str, verify: Verify, library: ModuleType) -> Verify:
    """What to give ``library``'s client as ``verify=`` for a request to ``url``: the user's
    own context or ``False`` as given; else, for https (or any URL where a proxy is named),
    the shared verifying context; else one that trusts nothing."""
    if verify is False or isinstance(verify, ssl.SSLContext):
        return verify
    if not loads_cas_for(url, verify):
        return _nothing_trusted()
    return verifying_context(library, verify)


def verifying_context(library: ModuleType, verify: str | bool = True) -> ssl.SSLContext:
    """The process's context that verifies servers as ``library`` would for ``verify=``
    (``True``, or a CA path) with the environment's ``SSL_CERT_FILE``/``SSL_CERT_DIR``."""
    cas: tuple[str | None, ...] = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if isinstance(verify, str):
        cas += (verify,)
    elif not any(cas):
        import certifi  # what the library loads then

        cas += (certifi.where(),)
    key = (library.__name__, verify, *(_as_found(path) for path in cas))
    with _lock:
        context = _verifying.get(key)
        if context is None:
            context = _verifying[key] = library.create_ssl_context(verify=verify, trust_env=True)
        return context


def _as_found(path: str | None) -> tuple[object, ...]:
    """A CA file or folder as it is now: a bundle rewritten (a CA removed, say) is another
    key, so the next client loads it again, as the library would."""
    if not path:
        return ()
    try:
        found = os.stat(path)
    except OSError:
        return (path,)
    return (path, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)


def loads_cas_for(url: str, verify: Verify) -> bool:
    """Whether a request to ``url`` gets the verifying context of :func:`context_for` (not the
    user's own, and not the one that trusts nothing)."""
    if verify is False or isinstance(verify, ssl.SSLContext):
        return False
    return url[:6].lower() == "https:" or environment_names_a_proxy()


def _nothing_trusted() -> ssl.SSLContext:
    """A client context with no CA loaded: hostnames checked, certificates required, so no
    server can pass."""
    with _lock:
        if not _trusting_nothing:
            _trusting_nothing.append(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        return _trusting_nothing[0]
