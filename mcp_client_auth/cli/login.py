"""``login URL``: run a fresh login, store the tokens, say where they are and how they are kept.

Tokens from this tool are mostly handed to other programs (curl, scripts), which cannot make
DPoP proofs: the login asks for bearer tokens unless ``--dpop`` is given. A client secret is
read from stdin, never from the command line, where ``ps`` shows it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .context import Context, run, run_now
from .describe import client_kind, expiry_text, key_text
from .output import EXIT_OK, PROG, CommandError, Reporter, Style, UsageError, is_tty, one_line

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .. import ClientRegistration, Login, OAuthClientProvider, TokenSet, TokenStore
    from .output import Streams


def run_login(args: argparse.Namespace, context: Context) -> int:
    url: str = args.url
    streams = context.streams
    secret = read_client_secret(streams) if args.client_secret_stdin else None
    store = context.open_store()
    provider = login_provider(args, context, secret, store)
    stored = run_now(lambda: store.get(url))
    before = stored.client if stored is not None else None
    tokens = login_failures(url, context, lambda: run(provider.alogin()))
    record = provider.record
    report = Reporter(streams)
    if args.method == "paste" and not is_tty(streams.stdin):
        report.info("")  # the paste prompt's line: a pipe echoes no Enter to end it
    report.success(f"Logged in to {url}")
    if record is not None and record.issuer:
        report.info(f"  issuer          {one_line(record.issuer)}")
    if record is not None and record.client is not None:
        client_id = one_line(record.client.client_id)
        report.info(f"  client id       {client_id} ({client_kind(record)})")
    moved = moved_client(before, record.client if record is not None else None)
    if moved:
        report.info(f"  redirect URI    {one_line(moved)}")
    style = Style(streams.stderr, streams.env)
    report.info(f"  scopes          {one_line(tokens.scope or '(none stated)')}")
    report.info(f"  access token    {expiry_text(tokens, time.time(), style)}")
    report.info(f"  refresh token   {'present' if tokens.refresh_token else 'absent'}")
    report.info(f"  stored in       {store.description}")
    report.info(f"  key             {key_text(store.protection)}")
    return EXIT_OK


def read_client_secret(streams: Streams) -> str:
    """The client secret from stdin (without echo on a terminal)."""
    if is_tty(streams.stdin):
        import getpass

        secret = getpass.getpass("Client secret (not shown): ")
    else:
        secret = streams.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise CommandError("--client-secret-stdin was given, but stdin held no client secret")
    return secret


def make_login(method: str | None, port: int | None, streams: Streams) -> Login:
    from .. import BrowserLogin, DeviceLogin, PasteLogin

    if method == "paste":
        return PasteLogin(input=streams.stdin, output=streams.stderr)
    if method == "device":
        return DeviceLogin(output=streams.stderr)
    # the browser login offers to paste the answer only where an input was given or stdin is
    # a terminal: a piped stdin is not handed over
    typed = streams.stdin if is_tty(streams.stdin) else None
    return BrowserLogin(port=port, input=typed, output=streams.stderr)


def login_provider(
    args: argparse.Namespace, context: Context, secret: str | None, store: TokenStore
) -> OAuthClientProvider:
    """The provider ``login`` runs; an option it cannot use is a usage error (exit 2)."""
    from .. import ConfigurationError, OAuthClientProvider

    try:
        return OAuthClientProvider(
            args.url,
            scopes=args.scope,
            client_name=PROG,
            client_id=args.client_id,
            client_secret=secret,
            client_metadata_url=args.client_metadata_url,
            redirect_port=args.port,
            store=store,
            login=make_login(args.method, args.port, context.streams),
            issuer=args.issuer,
            allow_insecure_http=context.allow_http,
            dpop=bool(args.dpop),
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def moved_client(before: ClientRegistration | None, after: ClientRegistration | None) -> str:
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


def login_failures(url: str, context: Context, login: Callable[[], TokenSet]) -> TokenSet:
    """A login that cannot receive the browser's answer, said with this tool's options (a
    ``--paste`` command for the same store), not the library's classes: ``login`` and
    ``token --login`` alike."""
    from .. import NoBrowserError, PortInUseError

    try:
        return login()
    except PortInUseError as exc:
        raise CommandError(
            f"cannot receive the browser's sign-in answer: port {exc.port} on 127.0.0.1 is in "
            "use or not allowed. Stop the program using it (perhaps another login still "
            "waiting), or choose another port with `--port N`"
        ) from None
    except NoBrowserError:
        paste = context.login_command(url, trailing=["--paste"])
        raise CommandError(
            "no browser could be opened here and no terminal is attached to paste the answer "
            f"into. In a terminal, run `{paste}` (paste back "
            "the address the browser ends on), or `--device` where the server offers the "
            "device flow, or `--port N` and open the URL above in a browser that reaches "
            "127.0.0.1:N (over SSH: ssh -L N:127.0.0.1:N)"
        ) from None
