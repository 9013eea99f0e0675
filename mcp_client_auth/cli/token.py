"""``token URL``: print a valid access token, refreshing first when needed.

``token`` sits in shell prompts and ``$(...)``: with a valid stored token it imports only what
reading one encrypted entry takes (json, Fernet, platformdirs; keyring only when the key is
there), never httpx, asyncio or the login machinery, which is why everything heavier is
imported inside the function that needs it. stdout holds the token and a newline, and nothing
else; a browser opens only with ``--login``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .context import Context, run, run_now
from .output import EXIT_OK, PROG, CommandError, Progress, write_data

if TYPE_CHECKING:
    import argparse

    from .. import ServerRecord, TokenError, TokenSet, TokenStore


def run_token(args: argparse.Namespace, context: Context) -> int:
    """The stored token is read straight from the store (no provider, no httpx) and printed
    when still valid: the common case costs a file read. Otherwise the provider refreshes it
    under the cross-process lock, or, with ``--login``, logs in."""
    url: str = args.url
    store: TokenStore | None = None
    record: ServerRecord | None = None
    if context.store_exists():
        store = context.open_store()
        record = read_record(store, url, context)
    tokens = record.tokens if record is not None else None
    if tokens is not None and tokens.dpop_bound and args.login:
        tokens = obtain_token(
            url,
            store or context.open_store(),
            context,
            interactive=True,
            fresh=True,
            record=record,
        )
    elif tokens is not None and tokens.dpop_bound:
        raise CommandError(
            f"the stored token for {url} is DPoP-bound (RFC 9449): other programs cannot use "
            f"it, since each request needs a proof signed with its key; "
            f"{context.login_hint(url, record)} for a bearer token"
        )
    if tokens is None or not tokens.is_valid(time.time()):
        if not args.login and (tokens is None or not tokens.refresh_token):
            if tokens is None:
                raise CommandError(f"not logged in to {url}; {context.login_hint(url)}")
            raise CommandError(
                f"the access token for {url} has expired and there is no refresh token; "
                f"{context.login_hint(url, record)}"
            )
        tokens = obtain_token(
            url, store or context.open_store(), context, interactive=args.login, record=record
        )
    line = f"Authorization: {tokens.token_type} {tokens.access_token}" if args.header else None
    write_data(context.streams, line or tokens.access_token)
    return EXIT_OK


def read_record(store: TokenStore, url: str, context: Context) -> ServerRecord | None:
    """The stored record of ``url``; an entry set aside on the way is part of the one error.

    The store answers which unreadable entry it set aside while reading; ``token`` then fails
    anyway ("not logged in"), and its promise is one line on stderr, so the set-aside is said
    in that line instead of in a warning before it (``--debug`` shows the store's warning too;
    ``doctor`` lists the file).
    """
    found = run_now(lambda: store.read(url))
    aside = found.set_aside
    if aside is not None and (context.debug or found.record is not None):
        import logging

        logging.getLogger("mcp_client_auth.store").warning("%s", aside.message)
    if found.record is None and aside is not None:
        raise CommandError(
            f"the stored login for {url} could not be read, so it was set aside (`{PROG} "
            f"doctor` lists it); {context.login_hint(url)}"
        )
    return found.record


def obtain_token(
    url: str,
    store: TokenStore,
    context: Context,
    *,
    interactive: bool,
    fresh: bool = False,
    record: ServerRecord | None = None,
) -> TokenSet:
    """The slow path: refresh (or, when allowed, log in) through the provider.

    ``dpop=False``: the token is for other programs (curl, scripts), which cannot make DPoP
    proofs, so a login started here asks for a plain bearer token. ``fresh`` logs in even
    when the stored token is valid (it is DPoP-bound, so of no use here).
    """
    from .. import LoginRequiredError, OAuthClientProvider, TokenError
    from .login import login_failures

    provider = OAuthClientProvider(
        url,
        store=store,
        interactive=interactive,
        client_name=PROG,
        dpop=False,
        allow_insecure_http=context.allow_http,
    )
    progress = Progress(context.streams)
    if not interactive:
        progress.show("Refreshing the access token")
    try:
        return login_failures(
            url, context, lambda: run(provider.alogin() if fresh else provider.aget_token())
        )
    except LoginRequiredError:
        raise CommandError(
            f"the login for {url} has expired and could not be renewed; "
            f"{context.login_hint(url, record)}"
        ) from None
    except TokenError as exc:
        if not interactive and refused(exc):
            reason = exc.error or f"HTTP {exc.status_code}"
            raise CommandError(
                f"the authorization server refused to refresh the token for {url} "
                f"({reason}); {context.login_hint(url, record)}"
            ) from None
        raise
    finally:
        progress.clear()


def refused(exc: TokenError) -> bool:
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
