"""The command-line tool ``mcp-client-auth``: login, token, status, logout, doctor, proxy.

How a shell script or a CLI tool authenticates to an OAuth-protected MCP server or API::

    curl -H "Authorization: Bearer $(mcp-client-auth token https://mcp.example.com/mcp)" ...

Why it is shaped the way it is:

* It is built on the library's public interface only: every name it imports is exported by
  ``mcp_client_auth`` (:class:`OAuthClientProvider`, its ``get_token``/``login``/``logout``,
  :class:`TokenStore` with ``default_directory`` and ``default_exists``, the login
  strategies, ``probe_keyring``, ``canonical_resource_url``), so it can do nothing a user of
  the library could not, and it finds exactly the entries the library writes. ``doctor``
  also looks at the folder's modes with ``os``, because that is its job.
* stdout carries only what a command is for (the token, the status, the doctor's report);
  everything meant for a person (progress, confirmations, warnings, errors) goes to stderr. So
  ``$(mcp-client-auth token URL)`` is exactly the token, whatever else happens.
* Exit codes: 0 success, 1 a failure the user can act on (the message says how), 2 a usage
  error. An error is one line, with a traceback only under ``--debug``. No output ever holds a
  token, a refresh token or a client secret, except ``token``'s stdout, which is the point.
* ``token`` sits in shell prompts and ``$(...)``: with a valid stored token it imports only
  what reading one encrypted entry takes (json, Fernet, platformdirs; keyring only when the key
  is there), never httpx, asyncio or the login machinery. Everything heavy is imported inside
  the function that needs it, which is why most imports below are local.
* Colour and the live status line appear only on a terminal, never in a pipe or a log, and
  never with ``NO_COLOR`` set.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Coroutine, Sequence
    from pathlib import Path

    from . import (
        ClientRegistration,
        KeyringProbe,
        Login,
        LogoutResult,
        OAuthClientProvider,
        Protection,
        ServerRecord,
        TokenError,
        TokenSet,
        TokenStore,
    )

__all__ = ["main"]

PROG = "mcp-client-auth"
KEY_ENV = "MCP_CLIENT_AUTH_KEY"  # the documented override of the store key (README)
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl+C (128 + SIGINT)

T = TypeVar("T")


class CommandError(Exception):
    """A failure the user can act on: printed as one line on stderr, then exit 1."""


class UsageError(Exception):
    """The command line itself is wrong: printed with the usage hint, then exit 2."""


# -- terminal manners ---------------------------------------------------------------------


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


class Style:
    """Colour for one stream: only on a terminal, and never with ``NO_COLOR`` or TERM=dumb."""

    def __init__(self, stream: TextIO) -> None:
        self.enabled = (
            _is_tty(stream)
            and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM", "") != "dumb"
        )

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._paint("1", text)

    def good(self, text: str) -> str:
        return self._paint("32", text)

    def warn(self, text: str) -> str:
        return self._paint("33", text)

    def bad(self, text: str) -> str:
        return self._paint("31", text)

    def dim(self, text: str) -> str:
        return self._paint("2", text)


class Progress:
    """A live status line on stderr while something slow runs; nothing at all off a terminal.

    Off a terminal the line would only be noise in a log (the result is reported anyway).
    """

    def __init__(self) -> None:
        self.live = _is_tty(sys.stderr)
        self._shown = False

    def show(self, text: str) -> None:
        if self.live:
            sys.stderr.write(f"\r\x1b[2K{text}…")
            sys.stderr.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._shown = False


class Reporter:
    """Messages for a person, on stderr, with the symbols ``gh`` users know."""

    def __init__(self) -> None:
        self.style = Style(sys.stderr)

    def _write(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def success(self, text: str) -> None:
        self._write(f"{self.style.good('✓')} {_printable(text)}")

    def warning(self, text: str) -> None:
        self._write(f"{self.style.warn('!')} {_printable(text)}")

    def info(self, text: str) -> None:
        self._write(text)  # our own lines, some styled: what they quote is cleaned by the caller

    def error(self, text: str) -> None:
        self._write(f"{self.style.bad('error:')} {_printable(text)}")


def _printable(text: str) -> str:
    """``text`` with its line breaks kept and every other control, bidi or invisible character
    shown as an escape (the library's one rule): what a message quotes from a server cannot
    drive the terminal, whoever built the message."""
    from . import visible_text

    return "\n".join(visible_text(line) for line in text.split("\n"))


def _one_line(text: str) -> str:
    """A value a server chose (a client_id, scopes), shown on one line with escapes."""
    from . import visible_text

    return visible_text(text)


def _configure_logging(debug: bool, *, quiet_key_file: bool = False) -> None:
    """The library's log records, one line each on stderr; everything under ``--debug``.

    ``quiet_key_file`` drops the store's once-per-process "the key is in a key file" warning:
    ``token`` runs in prompts and loops, where it would repeat on every call, and ``login``,
    ``status`` and ``doctor`` each say where the key is in their own report. Every other
    warning (an unreadable entry set aside, say) still shows.
    """
    import logging

    from . import visible_text

    style = Style(sys.stderr)

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            message = visible_text(record.getMessage())  # one line, whatever a server put in it
            if debug:
                stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
                head = f"{stamp} {record.levelname.lower()} {record.name}: {message}"
                if record.exc_info:
                    head += "\n" + self.formatException(record.exc_info)
                return head
            label = record.levelname.lower()
            painted = style.bad(label) if record.levelno >= logging.ERROR else style.warn(label)
            return f"{painted}: {message}"

    def keep(record: logging.LogRecord) -> bool:
        return not (quiet_key_file and not debug and record.funcName == "_warn_key_file")

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    handler.addFilter(keep)
    logger = logging.getLogger("mcp_client_auth")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
    if debug:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addHandler(handler)
            logging.getLogger(name).setLevel(logging.INFO)


# -- running the store's coroutines --------------------------------------------------------


def _run_now(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a store coroutine, without an event loop when it never suspends (the default
    store's): ``token`` then need not import asyncio (about a third of ``import httpx``)."""
    from ._eager import run_eagerly

    return run_eagerly(factory, _run)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coroutine)


# -- the store -----------------------------------------------------------------------------


def _store_folder(directory: str | None) -> Path:
    """Where the store is (``--store``, else ``$MCP_CLIENT_AUTH_HOME``, else the platform's)."""
    from . import TokenStore

    return TokenStore.default_directory(directory)


def _store_exists(directory: str | None) -> bool:
    """Whether a store was ever made there: reading commands must not create one (and a key)."""
    from . import TokenStore

    return TokenStore.default_exists(directory)


def _open_store(directory: str | None) -> TokenStore:
    from . import TokenStore

    return TokenStore.default(directory)


def _canonical(url: str) -> str:
    from . import ConfigurationError, canonical_resource_url

    try:
        return canonical_resource_url(url)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _secure(url: str, allow_http: bool) -> str:
    """``url`` if a token may go there: https, loopback, or plain http with ``--allow-http``."""
    from . import ConfigurationError, secure_resource_url

    try:
        return secure_resource_url(url, allow_insecure_http=allow_http)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


# The --store of this run, when it names another folder than the default one: a hint to log
# in must name it too, or the login lands in the default store and this one stays empty.
_other_store: str | None = None


def _note_store_option(directory: str | None) -> None:
    global _other_store
    _other_store = None
    if directory is not None:
        folder = _store_folder(directory)
        if folder != _store_folder(None):
            _other_store = str(folder)


def _login_hint(url: str, record: ServerRecord | None = None) -> str:
    """``run `mcp-client-auth login ... URL```: the command that logs in to the same store, with
    the same client where the user gave one (a pre-registered client, a metadata document)."""
    words = [PROG, "login"]
    if _other_store is not None:
        words += ["--store", _other_store]
    client = record.client if record is not None else None
    if client is not None and client.kind == "pre-registered":
        words += ["--client-id", client.client_id]
        if client.client_secret:
            words.append("--client-secret-stdin")
    elif client is not None and client.kind == "metadata-document":
        words += ["--client-metadata-url", client.client_id]
    listed = (record.resource_metadata or {}).get("authorization_servers") if record else None
    if record is not None and record.issuer and listed and listed[0] != record.issuer:
        words += ["--issuer", record.issuer]  # not the one a login picks by default
    if _plain_http_off_loopback(url):
        words.append("--allow-http")
    words.append(url)
    return f"run `{' '.join(_shell_quote(w) for w in words)}`"


def _plain_http_off_loopback(url: str) -> bool:
    """Whether ``url`` needs ``--allow-http`` (so a hint to log in names it too)."""
    from . import ConfigurationError, secure_resource_url

    try:
        secure_resource_url(url)
    except ConfigurationError:
        return True
    return False


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# -- token ---------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    """Print a valid access token, refreshing first when needed; never a browser unless --login.

    The stored token is read straight from the store (no provider, no httpx) and printed when
    still valid: the common case costs a file read. Otherwise the provider refreshes it under
    the cross-process lock, or, with ``--login``, logs in.
    """
    url: str = args.url
    store: TokenStore | None = None
    record: ServerRecord | None = None
    if _store_exists(args.store):
        store = _open_store(args.store)
        record = _read_record(store, url, debug=args.debug)
    tokens = record.tokens if record is not None else None
    if tokens is not None and tokens.dpop_bound and args.login:
        tokens = _obtain_token(
            url,
            store or _open_store(args.store),
            interactive=True,
            fresh=True,
            args=args,
            record=record,
        )
    elif tokens is not None and tokens.dpop_bound:
        raise CommandError(
            f"the stored token for {url} is DPoP-bound (RFC 9449): other programs cannot use "
            f"it, since each request needs a proof signed with its key; {_login_hint(url, record)} "
            "for a bearer token"
        )
    if tokens is None or not tokens.is_valid(time.time()):
        if not args.login and (tokens is None or not tokens.refresh_token):
            if tokens is None:
                raise CommandError(f"not logged in to {url}; {_login_hint(url)}")
            raise CommandError(
                f"the access token for {url} has expired and there is no refresh token; "
                f"{_login_hint(url, record)}"
            )
        tokens = _obtain_token(
            url, store or _open_store(args.store), interactive=args.login, args=args, record=record
        )
    line = f"Authorization: {tokens.token_type} {tokens.access_token}" if args.header else None
    _print_secret(line or tokens.access_token)
    return EXIT_OK


def _read_record(store: TokenStore, url: str, *, debug: bool) -> ServerRecord | None:
    """The stored record of ``url``; an entry set aside on the way is part of the one error.

    The store says with a WARNING that it set an unreadable entry aside; ``token`` then fails
    anyway ("not logged in"), and its promise is one line on stderr, so that warning is folded
    into the error instead of printed before it (``--debug`` shows both; ``doctor`` lists the
    file).
    """
    import logging

    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        # only the message of an entry actually moved aside ("moved it to ..."): a failed
        # move or an unreadable marker is not folded into "set aside"
        if record.levelno == logging.WARNING and "moved it to" in record.getMessage():
            held.append(record)
            return False
        return True

    store_log = logging.getLogger("mcp_client_auth.store")
    if not debug:
        store_log.addFilter(hold)
    try:
        record = _run_now(lambda: store.get(url))
    finally:
        store_log.removeFilter(hold)
    if record is None and held:
        raise CommandError(
            f"the stored login for {url} could not be read, so it was set aside (`{PROG} "
            f"doctor` lists it); {_login_hint(url)}"
        )
    for kept in held:
        store_log.handle(kept)
    return record


def _obtain_token(
    url: str,
    store: TokenStore,
    *,
    interactive: bool,
    args: argparse.Namespace,
    fresh: bool = False,
    record: ServerRecord | None = None,
) -> TokenSet:
    """The slow path of ``token``: refresh (or, when allowed, log in) through the provider.

    ``dpop=False``: the token is for other programs (curl, scripts), which cannot make DPoP
    proofs, so a login started here asks for a plain bearer token. ``fresh`` logs in even
    when the stored token is valid (it is DPoP-bound, so of no use here).
    """
    from . import LoginRequiredError, OAuthClientProvider, TokenError

    provider = OAuthClientProvider(
        url,
        store=store,
        interactive=interactive,
        client_name=PROG,
        dpop=False,
        allow_insecure_http=args.allow_http,
    )
    progress = Progress()
    if not interactive:
        progress.show("Refreshing the access token")
    try:
        return _login_failures(
            url, lambda: _run(provider.alogin() if fresh else provider.aget_token())
        )
    except LoginRequiredError:
        raise CommandError(
            f"the login for {url} has expired and could not be renewed; {_login_hint(url, record)}"
        ) from None
    except TokenError as exc:
        if not interactive and _refused(exc):
            reason = exc.error or f"HTTP {exc.status_code}"
            raise CommandError(
                f"the authorization server refused to refresh the token for {url} "
                f"({reason}); {_login_hint(url, record)}"
            ) from None
        raise
    finally:
        progress.clear()


def _refused(exc: TokenError) -> bool:
    """Whether the token endpoint refused outright (a 4xx with an OAuth error code): only a
    new login can help.

    invalid_grant, invalid_client, unauthorized_client, invalid_scope or an error code of the
    server's own: retrying the same refresh gets the same answer. A 5xx, a 408 or 429 (busy),
    a 4xx with no error code, or an unreachable server is different: the library's message
    already says the tokens are kept and to try again later.
    """
    status = exc.status_code
    return (
        exc.error is not None
        and status is not None
        and 400 <= status < 500
        and status not in (408, 429)
    )


def _print_secret(text: str) -> None:
    """Write ``text`` and a newline to stdout, and nothing else: the token is the output."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- login ---------------------------------------------------------------------------------


def _read_client_secret() -> str:
    """The client secret from stdin: never from the command line, where `ps` shows it."""
    if _is_tty(sys.stdin):
        import getpass

        secret = getpass.getpass("Client secret (not shown): ")
    else:
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise CommandError("--client-secret-stdin was given, but stdin held no client secret")
    return secret


def _make_login(method: str | None, port: int | None) -> Login:
    from . import BrowserLogin, DeviceLogin, PasteLogin

    if method == "paste":
        return PasteLogin()
    if method == "device":
        return DeviceLogin()
    return BrowserLogin(port=port)


def cmd_login(args: argparse.Namespace) -> int:
    """Run a fresh login, store the tokens, and say where they are and how they are protected."""
    url: str = args.url
    secret = _read_client_secret() if args.client_secret_stdin else None
    store = _open_store(args.store)
    provider = _login_provider(args, url, secret, store)
    stored = _run_now(lambda: store.get(url))
    before = stored.client if stored is not None else None
    tokens = _run_login(provider, url)
    record = provider.record
    report = Reporter()
    if args.method == "paste" and not _is_tty(sys.stdin):
        report.info("")  # the paste prompt's line: a pipe echoes no Enter to end it
    report.success(f"Logged in to {url}")
    if record is not None and record.issuer:
        report.info(f"  issuer          {_one_line(record.issuer)}")
    if record is not None and record.client is not None:
        client_id = _one_line(record.client.client_id)
        report.info(f"  client id       {client_id} ({_client_kind(record)})")
    moved = _moved_client(before, record.client if record is not None else None)
    if moved:
        report.info(f"  redirect URI    {_one_line(moved)}")
    report.info(f"  scopes          {_one_line(tokens.scope or '(none stated)')}")
    report.info(f"  access token    {_expiry_text(tokens, time.time(), Style(sys.stderr))}")
    report.info(f"  refresh token   {'present' if tokens.refresh_token else 'absent'}")
    report.info(f"  stored in       {store.description}")
    report.info(f"  key             {_key_text(store.protection)}")
    return EXIT_OK


def _login_provider(
    args: argparse.Namespace, url: str, secret: str | None, store: TokenStore
) -> OAuthClientProvider:
    """The provider ``login`` runs; an option it cannot use is a usage error (exit 2)."""
    from . import ConfigurationError, OAuthClientProvider

    try:
        return OAuthClientProvider(
            url,
            scopes=args.scope,
            client_name=PROG,
            client_id=args.client_id,
            client_secret=secret,
            client_metadata_url=args.client_metadata_url,
            redirect_port=args.port,
            store=store,
            login=_make_login(args.method, args.port),
            issuer=args.issuer,
            # Tokens from this tool are mostly handed to other programs (curl, scripts), which
            # cannot make DPoP proofs: bearer tokens unless asked.
            allow_insecure_http=args.allow_http,
            dpop=bool(args.dpop),
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _key_text(protection: Protection) -> str:
    """Where the store key is, in one line; a key file says only that ``doctor`` knows more
    (why no keyring works, and what to do), not the whole story in every command."""
    if protection.kind == "key file":
        return (
            f"in {protection.place}, protected only by file permissions (no working system "
            f"keyring; `{PROG} doctor` says more)"
        )
    return str(protection)


def _moved_client(before: ClientRegistration | None, after: ClientRegistration | None) -> str:
    """What became of a stored client whose redirect URI this login changed (``--port``);
    empty when it did not."""
    if (
        before is None
        or after is None
        or not after.redirect_uris  # a device-flow client: no redirect URI at all
        or after.redirect_uris == before.redirect_uris
    ):
        return ""
    if before.kind != "dynamic":
        return after.redirect_uri or ""
    how = (
        "registration updated, same client id"
        if after.client_id == before.client_id
        else f"a new client was registered for it; the one for {before.redirect_uri} is unused"
    )
    return f"{after.redirect_uri} ({how})"


def _run_login(provider: OAuthClientProvider, url: str) -> TokenSet:
    """The provider's login, its no-browser failure said in this tool's words (its options),
    not the library's (its classes)."""
    return _login_failures(url, lambda: _run(provider.alogin()))


def _login_failures(url: str, login: Callable[[], TokenSet]) -> TokenSet:
    """A login that cannot receive the browser's answer, said with this tool's options (a
    ``--paste`` command for the same store), not the library's classes: ``login`` and
    ``token --login`` alike."""
    from . import NoBrowserError, PortInUseError

    try:
        return login()
    except PortInUseError as exc:
        raise CommandError(
            f"cannot receive the browser's sign-in answer: port {exc.port} on 127.0.0.1 is in "
            "use or not allowed. Stop the program using it (perhaps another login still "
            "waiting), or choose another port with `--port N`"
        ) from None
    except NoBrowserError:
        words = [PROG, "login"]
        if _other_store is not None:
            words += ["--store", _other_store]
        if _plain_http_off_loopback(url):
            words.append("--allow-http")
        words += ["--paste", url]
        paste = " ".join(_shell_quote(w) for w in words)
        raise CommandError(
            "no browser could be opened here and no terminal is attached to paste the answer "
            f"into. In a terminal, run `{paste}` (paste back "
            "the address the browser ends on), or `--device` where the server offers the "
            "device flow, or `--port N` and open the URL above in a browser that reaches "
            "127.0.0.1:N (over SSH: ssh -L N:127.0.0.1:N)"
        ) from None


# -- status --------------------------------------------------------------------------------


def _client_kind(record: ServerRecord) -> str:
    client = record.client
    if client is None:
        return "none"
    kind = {
        "dynamic": "dynamic registration",
        "pre-registered": "pre-registered",
        "metadata-document": "client ID metadata document",
    }.get(client.kind, client.kind)
    public = client.token_endpoint_auth_method == "none"
    return _one_line(f"{kind}, {'public client' if public else client.token_endpoint_auth_method}")


def _relative(seconds: float) -> str:
    """``in 59 min`` / ``3 min ago``: how far off a moment is, as a person says it."""
    span = abs(seconds)
    if span < 90:
        text = f"{int(span)} s"
    elif span < 90 * 60:
        text = f"{round(span / 60)} min"
    elif span < 48 * 3600:
        hours, rest = divmod(int(span), 3600)
        text = f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    else:
        text = f"{round(span / 86400)} days"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def _absolute(moment: float) -> str:
    # time, not datetime: the same text, and `status` prints one per server
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(moment))


def _iso_utc(moment: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _expiry_text(tokens: TokenSet | None, now: float, style: Style) -> str:
    if tokens is None:
        return style.warn("none (logged out)")
    kind = "DPoP-bound" if tokens.dpop_bound else "bearer"
    if tokens.expires_at is None:
        return f"{style.good('valid')} {kind} (the server gave no expiry)"
    left = tokens.expires_at - now
    when = f"({_absolute(tokens.expires_at)})"
    if left > 0:
        return f"{style.good('valid')} {kind}, expires {_relative(left)} {when}"
    return f"{style.warn('expired')} {kind}, {_relative(left)} {when}"


def _state(record: ServerRecord, now: float) -> tuple[str, bool]:
    """One phrase on what the next use of this login does, and whether it works unattended."""
    tokens = record.tokens
    if tokens is None:
        return "logged out: " + _login_hint(record.resource, record), False
    if tokens.is_valid(now):
        return "logged in", True
    if tokens.refresh_token:
        return "logged in (the access token is refreshed on next use)", True
    return "expired: " + _login_hint(record.resource, record), False


def _protection_json(protection: Protection) -> dict[str, Any]:
    return {
        "kind": protection.kind,
        "where": protection.where,
        "note": protection.note or None,
        "in_keyring": protection.in_keyring,
        "description": str(protection),
    }


def _record_json(record: ServerRecord, now: float) -> dict[str, Any]:
    """A record as ``status --json`` shows it: everything but a token or a secret."""
    tokens, client = record.tokens, record.client
    access: dict[str, Any] = {"present": tokens is not None}
    if tokens is not None:
        access["type"] = "DPoP" if tokens.dpop_bound else "Bearer"
        access["expires_at"] = _iso_utc(tokens.expires_at) if tokens.expires_at else None
        access["expires_in"] = (
            round(tokens.expires_at - now) if tokens.expires_at is not None else None
        )
        access["valid"] = tokens.is_valid(now)
    state, usable = _state(record, now)
    return {
        "resource": record.resource,
        "issuer": record.issuer,
        "client_id": client.client_id if client else None,
        "client_kind": client.kind if client else None,
        "client_auth_method": client.token_endpoint_auth_method if client else None,
        "scopes": sorted(tokens.scopes) if tokens else [],
        "access_token": access,
        "refresh_token": {"present": bool(tokens and tokens.refresh_token)},
        "usable": usable,
        "state": state,
    }


def _load_records(store: TokenStore, url: str | None) -> list[ServerRecord]:
    """The record of ``url``, else every record (one pass: each entry decrypted once)."""
    if url is None:
        return _run_now(store.records)
    record = _run_now(lambda: store.get(url))
    return [] if record is None else [record]


def cmd_status(args: argparse.Namespace) -> int:
    """The stored logins and where they are kept; never a token or a secret, masked or not.

    Exit 1 when a URL is given and that server has no usable login (so a script can ask
    "am I logged in?"); with no URL, 0 whatever is stored.
    """
    url: str | None = args.url
    folder = _store_folder(args.store)
    now = time.time()
    if _store_exists(args.store):
        store: TokenStore | None = _open_store(args.store)
        assert store is not None
        records = _load_records(store, url)
    else:
        store, records = None, []
    usable = bool(records) and all(_state(r, now)[1] for r in records)
    if args.json:
        import json

        document = {
            "store": {
                "location": str(folder),
                "exists": store is not None,
                "description": store.description if store else None,
                "protection": _protection_json(store.protection) if store else None,
            },
            "servers": [_record_json(r, now) for r in records],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _print_status(store, folder, records, url, now)
    return EXIT_OK if url is None or usable else EXIT_FAILURE


def _print_status(
    store: TokenStore | None,
    folder: Path,
    records: Sequence[ServerRecord],
    url: str | None,
    now: float,
) -> None:
    style = Style(sys.stdout)
    lines: list[str] = []
    if store is None:
        lines.append(f"Store: {folder} (not created yet: nothing stored)")
    else:
        protection = store.protection
        shown = (
            style.warn(_key_text(protection)) if protection.kind == "key file" else str(protection)
        )
        lines.append(f"Store: {store.description}")
        lines.append(f"Key:   {shown}")
    lines.append("")
    if not records:
        if url:
            lines.append(f"Not logged in to {url}; {_login_hint(url)}")
        else:
            lines.append(f"No stored logins; `{PROG} login URL` adds one.")
    for record in records:
        tokens = record.tokens
        state, usable = _state(record, now)
        lines.append(style.bold(record.resource))
        rows = [
            ("state", style.good(state) if usable else style.warn(state)),
            ("issuer", _one_line(record.issuer or "(unknown)")),
            (
                "client id",
                f"{_one_line(record.client.client_id)} ({_client_kind(record)})"
                if record.client
                else "none",
            ),
            (
                "scopes",
                _one_line(" ".join(sorted(tokens.scopes))) if tokens and tokens.scopes else "-",
            ),
            ("access token", _expiry_text(tokens, now, style)),
            ("refresh token", "present" if tokens and tokens.refresh_token else "absent"),
        ]
        lines.extend(f"  {name:<15} {value}" for name, value in rows)
        lines.append("")
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")


# -- logout --------------------------------------------------------------------------------


def cmd_logout(args: argparse.Namespace) -> int:
    """Revoke (RFC 7009) where the server allows, forget locally, and say which happened."""
    report = Reporter()
    if args.all:
        _remove_orphan_key_files(report)
    if not _store_exists(args.store):
        report.info("Nothing stored, so nothing to log out of.")
        return EXIT_OK
    store = _open_store(args.store)
    if args.all:
        # each record is read again when its turn comes: earlier logouts take a while
        urls = [record.resource for record in _run_now(store.records)]
        if not urls:
            report.info("Nothing stored, so nothing to log out of.")
            return EXIT_OK
    else:
        urls = [args.url]
    from . import MCPAuthError

    failed = False
    for url in urls:
        try:
            failed = not _logout_one(url, store, args, report) or failed
        except (MCPAuthError, OSError) as exc:
            if not args.all:
                raise
            report.error(f"{url}: {exc}")  # and go on with the other servers
            failed = True
    return EXIT_FAILURE if failed else EXIT_OK


def _remove_orphan_key_files(report: Reporter) -> None:
    """``logout --all`` forgets everything: also the key files no store folder is left for."""
    from . import TokenStore

    removed = TokenStore.remove_orphan_key_files()
    if removed:
        files = "key file" if len(removed) == 1 else "key files"
        report.success(f"Removed {len(removed)} {files} of store folders that no longer exist.")


def _logout_one(url: str, store: TokenStore, args: argparse.Namespace, report: Reporter) -> bool:
    """Log out of one server; False when something was left undone (said on stderr)."""
    from . import MCPAuthError, OAuthClientProvider

    forget_client: bool = args.forget_client
    before = _run_now(lambda: store.get(url))
    if before is None:
        report.info(f"Not logged in to {url}; nothing to do.")
        return True
    provider = OAuthClientProvider(
        url, store=store, interactive=False, allow_insecure_http=args.allow_http
    )
    progress = Progress()
    progress.show(f"Logging out of {url}")
    failure: str | None = None
    try:
        result = _run(provider.alogout(revoke=True, forget_client=forget_client))
    except MCPAuthError as exc:
        # Revocation could not be tried at all (a revocation endpoint on plain http, say; an
        # unreachable one is in result.errors): the tokens are still forgotten here, which is
        # what the user asked for first.
        failure = str(exc)
        result = _run(provider.alogout(revoke=False, forget_client=forget_client))
    finally:
        progress.clear()
    return _report_logout(url, before, result, forget_client, failure, report)


def _report_logout(
    url: str,
    before: ServerRecord,
    result: LogoutResult,
    forget_client: bool,
    failure: str | None,
    report: Reporter,
) -> bool:
    """Say what was revoked at the server and what was only forgotten here; False on failure.

    A token the server answers ``unsupported_token_type`` for (RFC 7009 2.2.1: it cannot
    revoke that kind, typically a self-contained JWT access token) is not a failure: nothing
    more can be done but wait for it to expire, so the message says how long that is.
    """
    tokens = before.tokens
    dropped = "; dropped the client registration" if forget_client else ""
    if tokens is None:
        report.success(f"Already logged out of {url}{dropped or '; nothing to revoke'}.")
        return True
    names = {"refresh_token": "the refresh token", "access_token": "the access token"}
    held = ["refresh_token"] if tokens.refresh_token else []
    unrevoked = [kind for kind in [*held, "access_token"] if kind not in result.revoked]
    cannot = [e.split(":", 1)[0] for e in result.errors if "(unsupported_token_type)" in e]
    problems = [e for e in result.errors if "(unsupported_token_type)" not in e]
    problems += [failure] if failure else []
    still = " and ".join(names.get(kind, kind) for kind in unrevoked)
    until = "until it expires" if unrevoked == ["access_token"] else "until they expire"
    if tokens.expires_at is not None and tokens.expires_at > time.time():
        until += f" (the access token {_relative(tokens.expires_at - time.time())})"
    parts: list[str] = []
    if result.revoked:
        revoked = " and ".join(names.get(kind, kind) for kind in result.revoked)
        parts.append(f"the authorization server revoked {revoked}")
    if cannot:
        parts.append(
            f"it cannot revoke {' and '.join(names.get(k, k) for k in cannot)} "
            "(unsupported_token_type)"
        )
    if problems:
        # the server answered and said no, or the revocation could not be sent at all
        refused = not failure and all(": HTTP " in p for p in problems)
        what = "the server's revocation endpoint refused" if refused else "revoking failed"
        report.warning(
            f"Logged out of {url} here{dropped}, but {what} ({'; '.join(problems)})"
            + "".join(f"; {part}" for part in parts)
            + f". Still valid on the server {until}: {still}."
        )
        return False
    if not result.revocation_supported:
        parts.append("the authorization server has no revocation endpoint, so nothing was revoked")
    tail = f"; still valid on the server {until}: {still}" if unrevoked else ""
    report.success(
        f"Logged out of {url}: {'; '.join(parts)}{tail}; forgot the tokens here{dropped}."
    )
    return True


# -- doctor --------------------------------------------------------------------------------


class Findings:
    """The doctor's report: one line per check, and whether anything needs fixing."""

    def __init__(self) -> None:
        self.style = Style(sys.stdout)
        self.lines: list[str] = []
        self.problems = 0
        self.warnings = 0

    def ok(self, text: str, *details: str) -> None:
        self._add(self.style.good("✓"), text, details)

    def warn(self, text: str, *details: str) -> None:
        self.warnings += 1
        self._add(self.style.warn("!"), text, details)

    def problem(self, text: str, *details: str) -> None:
        self.problems += 1
        self._add(self.style.bad("✗"), text, details)

    def _add(self, mark: str, text: str, details: Sequence[str]) -> None:
        self.lines.append(f"{mark} {_printable(text)}")
        self.lines.extend(f"    {_printable(d)}" for d in details if d)


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _bad_modes(folder: Path) -> list[str]:
    """Every folder under the store that is not 0700 and every file that is not 0600."""
    import stat

    found: list[str] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    for root, dirs, files in os.walk(folder):
        for name, want, is_dir in [(root, 0o700, True)] + [
            (os.path.join(root, f), 0o600, False) for f in files
        ]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found.append(f"{name} is a symbolic link")
            elif mode != want:
                kind = "folder" if is_dir else "file"
                found.append(f"{name}: {kind} mode {mode:o}, should be {want:o}")
            elif uid is not None and info.st_uid != uid:
                found.append(f"{name} belongs to another user (uid {info.st_uid})")
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return found


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check everything the tool depends on; exit 1, saying what to do, when something is wrong."""
    import platform

    from . import StorageError, probe_keyring

    found = Findings()
    style = found.style
    mine = _version("mcp-client-auth") or "unknown"
    versions = [
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("httpx", _version("httpx") or "not installed"),
        ("httpx2", _version("httpx2") or "not installed (optional)"),
        ("keyring", _version("keyring") or "not installed"),
        ("cryptography", _version("cryptography") or "not installed"),
        ("platformdirs", _version("platformdirs") or "not installed"),
    ]
    head = [style.bold(f"{PROG} {mine}")] + [f"  {n:<13} {v}" for n, v in versions] + [""]

    progress = Progress()
    progress.show("Trying the system keyring (set, get, delete)")
    try:
        probe = probe_keyring()
    finally:
        progress.clear()
    _report_keyring(found, probe, env_key=bool(os.environ.get(KEY_ENV)))

    _report_orphan_key_files(found)
    folder = _store_folder(args.store)
    if not _store_exists(args.store):
        found.ok(
            f"Store folder: {folder} (not created yet; the first login creates it, 0700)",
        )
        _report_future_key(found, probe, args.store)
        return _finish_doctor(head, found)
    bad = _bad_modes(folder)
    if bad:
        found.problem(
            f"Store folder: {folder}: permissions are wrong, so other users may read it",
            *bad[:10],
            f"...and {len(bad) - 10} more" if len(bad) > 10 else "",
            f"Fix: chmod -R u=rwX,go= {_shell_quote(str(folder))}  (folders 0700, files 0600)",
        )
    else:
        found.ok(f"Store folder: {folder} (folders 0700, files 0600, all yours)")
    try:
        store = _open_store(args.store)
        records = _run_now(store.records)
    except StorageError as exc:
        found.problem(f"The store cannot be opened: {exc}")
        return _finish_doctor(head, found)
    _report_key(found, store.protection, probe)
    unreadable = store.unreadable_files()
    summary = f"Entries: {len(records)} stored, {len(unreadable)} unreadable"
    if unreadable:
        found.problem(
            summary + " (set aside, not deleted; their servers ask for a new login)",
            *(str(p) for p in unreadable[:10]),
            "Fix: once you no longer need them, delete those files.",
        )
    else:
        found.ok(summary)
    return _finish_doctor(head, found)


def _report_keyring(found: Findings, probe: KeyringProbe, *, env_key: bool) -> None:
    text = f"Keyring: {probe.verdict} ({probe.backend}): {probe.reason}"
    if probe.works:
        found.ok(text)
    elif env_key:
        found.ok(text, "Not needed: the store key comes from the environment.")
    elif probe.verdict in ("locked", "slow"):
        found.warn(text, "Unlock the keyring (log in to the desktop session) and run doctor again.")
    else:
        found.warn(
            text,
            "Without it the store key is kept in a key file. To use a keyring on Linux, install "
            "and unlock a Secret Service (gnome-keyring or KeePassXC) in a D-Bus session; "
            "in containers and CI, set MCP_CLIENT_AUTH_KEY instead.",
        )


def _report_orphan_key_files(found: Findings) -> None:
    """Key files whose store folder is gone (temporary stores of tests and demos, moved ones)."""
    from . import StorageError, TokenStore

    try:
        orphans = TokenStore.orphan_key_files()
    except StorageError as exc:
        found.problem(f"Key files: {exc}")
        return
    if orphans:
        found.warn(
            f"Key files: {len(orphans)} left by store folders that no longer exist",
            *(str(p) for p in orphans[:10]),
            f"...and {len(orphans) - 10} more" if len(orphans) > 10 else "",
            f"Fix: `{PROG} logout --all` removes them (no store can use them again).",
        )


def _report_future_key(found: Findings, probe: KeyringProbe, directory: str | None) -> None:
    """Where the key of a store not made yet will go: what the first login will do."""
    from . import TokenStore

    if os.environ.get(KEY_ENV):
        found.ok(f"Key: none yet; it will come from the {KEY_ENV} environment variable")
    elif probe.works:
        found.ok(f"Key: none yet; the first login makes one and keeps it in {probe.backend}")
    else:
        key_file = TokenStore.default_key_file(directory)
        found.warn(
            f"Key: none yet; the first login makes one and keeps it in the key file "
            f"{key_file} (0600), protected only by file permissions",
        )


def _report_key(found: Findings, protection: Protection, probe: KeyringProbe) -> None:
    if protection.kind == "key file":
        from pathlib import Path

        path = Path(protection.where)
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = None
        if mode is not None and mode != 0o600:
            found.problem(
                f"Key: in the key file {path} with mode {mode:o}: other users may read it",
                f"Fix: chmod 600 {_shell_quote(str(path))}",
            )
            return
        found.warn(
            f"Key: in the key file {path} (0600), protected only by file permissions: anyone "
            "who can read that file can read the stored tokens",
            "With a working keyring, the next use of the store moves the key into it."
            if probe.works
            else "",
        )
    elif protection.kind == "keyring":
        found.ok(f"Key: in {protection.place}")
    else:
        found.ok(f"Key: {protection}")


def _finish_doctor(head: list[str], found: Findings) -> int:
    style = found.style
    if found.problems:
        verdict = style.bad(f"{found.problems} problem(s) found; see the fixes above.")
    elif found.warnings:
        verdict = style.warn("Works, with the warnings above.")
    else:
        verdict = style.good("Everything looks right.")
    sys.stdout.write("\n".join([*head, *found.lines, "", verdict]) + "\n")
    return EXIT_FAILURE if found.problems else EXIT_OK


# -- the command line ------------------------------------------------------------------------


def _one_line_parser_class() -> type[argparse.ArgumentParser]:
    """An ``ArgumentParser`` whose every complaint is one line on stderr and exit 2.

    argparse prints the whole usage block before its one-line error; a user then hunts for
    the error under it. The line names ``--help`` instead, where the usage is.
    """
    import argparse

    class OneLineParser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            _usage_error(self.prog, message)

    return OneLineParser


def _usage_error(prog: str, message: str) -> NoReturn:
    """Say what is wrong with the command line, in one line, and exit 2."""
    Reporter().error(f"{message} (see `{prog} --help`)")
    sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; global options are accepted before or after the command."""
    import argparse

    parser_class = _one_line_parser_class()
    common = parser_class(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log what happens (no secrets) and show tracebacks",
    )
    common.add_argument(
        "--store",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the token store folder (default: $MCP_CLIENT_AUTH_HOME, else the user data folder)",
    )
    common.add_argument(
        "--allow-http",
        action="store_true",
        default=argparse.SUPPRESS,
        help=(
            "allow a plain-http server off this machine, tokens in clear (development only; "
            "also MCP_CLIENT_AUTH_INSECURE_HTTP=1)"
        ),
    )
    parser = parser_class(
        prog=PROG,
        description="Log in to OAuth-protected MCP servers and APIs, and use their tokens.",
        epilog=(
            f'Example: curl -H "Authorization: Bearer $({PROG} token URL)" URL. '
            "Exit status: 0 success, 1 failure (the message says what to do), 2 usage error."
        ),
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    login = commands.add_parser(
        "login",
        parents=[common],
        help="log in to a server and store its tokens",
        description="Log in (discovery, registration, browser) and store the tokens encrypted.",
    )
    login.add_argument("url", metavar="URL", help="the protected resource (the MCP endpoint URL)")
    login.add_argument(
        "--scope",
        action="append",
        metavar="S",
        help="a scope to ask for (repeat, or give several separated by spaces)",
    )
    login.add_argument("--client-id", metavar="ID", help="a pre-registered client ID")
    login.add_argument(
        "--client-secret-stdin",
        action="store_true",
        help="read the pre-registered client's secret from stdin (needs --client-id)",
    )
    login.add_argument(
        "--client-metadata-url", metavar="U", help="this client's ID metadata document (https)"
    )
    login.add_argument(
        "--issuer",
        metavar="URL",
        help=(
            "the authorization server to use (its issuer, exactly); a server that does not "
            "list it is refused"
        ),
    )
    login.add_argument(
        "--port",
        type=int,
        metavar="N",
        help=(
            "fixed loopback port for the redirect URI (for ssh -L N:127.0.0.1:N); "
            "wins over a stored client's port"
        ),
    )
    login.add_argument(
        "--dpop",
        action="store_true",
        help=(
            "ask for DPoP-bound tokens (RFC 9449): safer, but usable only by programs using "
            "this library, not through `token`"
        ),
    )
    how = login.add_mutually_exclusive_group()
    how.add_argument(
        "--browser",
        dest="method",
        action="store_const",
        const="browser",
        help="open the system browser (default)",
    )
    how.add_argument(
        "--paste",
        dest="method",
        action="store_const",
        const="paste",
        help="print the URL; paste back the address the browser ends on (headless machines)",
    )
    how.add_argument(
        "--device",
        dest="method",
        action="store_const",
        const="device",
        help="device code flow (RFC 8628), where the server offers it",
    )
    login.set_defaults(handler=cmd_login, parser=login)

    token = commands.add_parser(
        "token",
        parents=[common],
        help="print a valid access token (refreshing it when needed)",
        description=(
            "Print the access token and a newline, and nothing else, on stdout; refresh it "
            "first when it has expired. Never opens a browser unless --login is given."
        ),
    )
    token.add_argument("url", metavar="URL", help="the protected resource (the MCP endpoint URL)")
    token.add_argument(
        "--header", action="store_true", help="print 'Authorization: Bearer ...' instead"
    )
    token.add_argument(
        "--login", action="store_true", help="log in (browser) when there is no usable token"
    )
    token.set_defaults(handler=cmd_token, parser=token)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show the stored logins (never a token or a secret)",
        description=(
            "The stored logins and where they are kept. With URL, exit 1 when that server "
            "has no usable login."
        ),
    )
    status.add_argument(
        "url", metavar="URL", nargs="?", help="one server only (default: every stored one)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status, parser=status)

    logout = commands.add_parser(
        "logout",
        parents=[common],
        help="revoke and forget the tokens of a server (or of all)",
        description=(
            "Revoke the refresh token, then the access token, where the authorization server "
            "has a revocation endpoint (RFC 7009), and forget them."
        ),
    )
    logout.add_argument(
        "url", metavar="URL", nargs="?", help="the server to log out of (or give --all)"
    )
    logout.add_argument(
        "--all",
        action="store_true",
        help="every stored server; also removes key files left by store folders now gone",
    )
    logout.add_argument(
        "--forget-client", action="store_true", help="drop the client registration too"
    )
    logout.set_defaults(handler=cmd_logout, parser=logout)

    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="check versions, the keyring, the store and its permissions",
        description="Check the set-up; exit 1, saying what to do, when something is wrong.",
    )
    doctor.set_defaults(handler=cmd_doctor, parser=doctor)

    from .proxy.command import add_proxy_command

    add_proxy_command(commands)
    return parser


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot say by itself; a failure here is a usage error (exit 2).

    Also puts every URL in its canonical form, so a malformed one is a usage error too.
    """
    parser: argparse.ArgumentParser = args.parser
    if args.store is not None and not args.store.strip():
        parser.error("--store needs a folder (empty: the current folder was never meant)")
    if getattr(args, "url", None) is not None:  # "" too: an empty URL is a bad argument
        try:
            args.url = _canonical(args.url)
            if args.command != "status":  # each of the others sends a token, or asks for one
                args.url = _secure(args.url, args.allow_http)
        except UsageError as exc:
            parser.error(str(exc))
    if args.command == "login":
        if args.client_secret_stdin and not args.client_id:
            parser.error("--client-secret-stdin needs --client-id")
        if args.port is not None and not 0 < args.port < 65536:
            parser.error(f"--port must be between 1 and 65535, not {args.port}")
        if args.port is not None and args.method in ("device",):
            parser.error("--port has no use with --device")
    elif args.command == "logout":
        if args.all and args.url:
            parser.error("give a URL or --all, not both")
        if not args.all and not args.url:
            parser.error("give the URL to log out of, or --all")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; return the exit status (0 success, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        _usage_error(PROG, "give a command: login, token, status, logout or doctor")
    # Not parser.set_defaults(): the global options' actions are shared with every command's
    # parser (argparse parents), so a default set there would overwrite `--debug COMMAND`.
    args.debug = debug = bool(getattr(args, "debug", False))
    args.store = getattr(args, "store", None)
    args.allow_http = bool(getattr(args, "allow_http", False))
    _check(args)
    _note_store_option(args.store)
    _configure_logging(debug, quiet_key_file=True)
    report = Reporter()
    try:
        status: int = args.handler(args)
        return status
    except UsageError as exc:
        report.error(f"{exc} (see `{args.parser.prog} --help`)")
        return EXIT_USAGE
    except CommandError as exc:
        report.error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        report.error("cancelled")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing left to say to anyone.
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        report.error(_describe(exc, debug))
        return EXIT_FAILURE


def _describe(exc: BaseException, debug: bool) -> str:
    """One readable line for an error: the library's own message says what to do."""
    from . import MCPAuthError

    if isinstance(exc, MCPAuthError):
        return str(exc)
    if isinstance(exc, OSError):
        return str(exc)
    hint = "" if debug else f" (run `{PROG} --debug ...` for the details)"
    return f"unexpected {type(exc).__name__}: {exc}{hint}"


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
