"""What every command is handed: its streams, the global options, the store, the login hint.

The store is the library's default one (``TokenStore.default``), found exactly where the
library looks, so the tool finds the entries the library writes. Reading commands ask whether
a store exists before opening one: opening creates the folder and a key.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .output import PROG, Streams

if TYPE_CHECKING:
    from pathlib import Path

    from .. import ServerRecord, TokenStore

T = TypeVar("T")


class Context:
    """One run of a command: where it writes, and the options every command takes."""

    __slots__ = ("allow_http", "debug", "store_option", "streams")

    def __init__(
        self,
        streams: Streams,
        *,
        store_option: str | None = None,
        allow_http: bool = False,
        debug: bool = False,
    ) -> None:
        self.streams = streams
        self.store_option = store_option  # --store
        self.allow_http = allow_http
        self.debug = debug

    def store_folder(self) -> Path:
        """Where the store is (``--store``, else ``$MCP_CLIENT_AUTH_HOME``, else the platform's)."""
        from .. import TokenStore

        return TokenStore.default_directory(self.store_option)

    def store_exists(self) -> bool:
        """Whether a store was ever made there: reading commands must not create one (and a key)."""
        from .. import TokenStore

        return TokenStore.default_exists(self.store_option)

    def open_store(self) -> TokenStore:
        from .. import TokenStore

        return TokenStore.default(self.store_option)

    def other_store(self) -> str | None:
        """The ``--store`` folder when it is not the default one: a hint to log in must name it,
        or the login lands in the default store and this one stays empty."""
        if self.store_option is None:
            return None
        from .. import TokenStore

        folder = TokenStore.default_directory(self.store_option)
        return None if folder == TokenStore.default_directory(None) else str(folder)

    def login_command(
        self, url: str, options: Sequence[str] = (), trailing: Sequence[str] = ()
    ) -> str:
        """``mcp-client-auth login [--store DIR] OPTIONS [--allow-http] TRAILING URL``,
        shell-quoted: a command that logs in to this store."""
        words = [PROG, "login"]
        other = self.other_store()
        if other is not None:
            words += ["--store", other]
        words += options
        if plain_http_off_loopback(url):
            words.append("--allow-http")
        words += [*trailing, url]
        return " ".join(shell_quote(w) for w in words)

    def login_hint(self, url: str, record: ServerRecord | None = None) -> str:
        """``run `mcp-client-auth login ... URL```: the command that logs in to the same store,
        with the same client where the user gave one (a pre-registered client, a metadata
        document) and the same authorization server where it is not the default one."""
        options: list[str] = []
        client = record.client if record is not None else None
        if client is not None and client.kind == "pre-registered":
            options += ["--client-id", client.client_id]
            if client.client_secret:
                options.append("--client-secret-stdin")
        elif client is not None and client.kind == "metadata-document":
            options += ["--client-metadata-url", client.client_id]
        listed = (record.resource_metadata or {}).get("authorization_servers") if record else None
        if record is not None and record.issuer and listed and listed[0] != record.issuer:
            options += ["--issuer", record.issuer]  # not the one a login picks by default
        return f"run `{self.login_command(url, options)}`"


def plain_http_off_loopback(url: str) -> bool:
    """Whether ``url`` needs ``--allow-http`` (so a hint to log in names it too)."""
    from .. import ConfigurationError, secure_resource_url

    try:
        secure_resource_url(url)
    except ConfigurationError:
        return True
    return False


def shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def run_now(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a store coroutine, without an event loop when it never suspends (the default
    store's): ``token`` then need not import asyncio."""
    from .. import run_blocking

    return run_blocking(factory)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that does I/O (a refresh, a login, a logout) to its end."""
    import asyncio

    return asyncio.run(coroutine)
