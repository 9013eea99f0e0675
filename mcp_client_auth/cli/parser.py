"""The command line: every command's options, and the checks argparse cannot make itself.

Only argparse is imported here: the parser is built on every run, ``token`` included. Global
options (``--debug``, ``--store``, ``--allow-http``) are accepted before or after the command.
Every complaint about the command line is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn, Protocol

from .output import PROG, Streams, UsageExit, usage_error
from .proxy import add_proxy

URL_HELP = "the protected resource (the MCP endpoint URL)"


class Commands(Protocol):
    """The subcommands of a parser (what ``add_subparsers`` returns): each command adds its own."""

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser: ...


class Writable(Protocol):
    """Where argparse writes its help and usage."""

    def write(self, text: str, /) -> object: ...


def parser_class(streams: Streams) -> type[argparse.ArgumentParser]:
    """An ``ArgumentParser`` that writes to ``streams`` and ends by raising :class:`UsageExit`
    (never by calling ``sys.exit`` itself), with every complaint as one line."""

    class OneLineParser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise usage_error(streams, self.prog, message)

        def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
            if message:
                streams.stderr.write(message)
            raise UsageExit(status)

        def print_help(self, file: Writable | None = None) -> None:
            super().print_help(file or streams.stdout)

        def print_usage(self, file: Writable | None = None) -> None:
            super().print_usage(file or streams.stdout)

    return OneLineParser


def build_parser(streams: Streams | None = None) -> argparse.ArgumentParser:
    """The argument parser of the whole tool."""
    one_line = parser_class(streams or Streams.system())
    common = one_line(add_help=False)
    add_global_options(common)
    parser = one_line(
        prog=PROG,
        description="Log in to OAuth-protected MCP servers and APIs, and use their tokens.",
        epilog=(
            f'Example: curl -H "Authorization: Bearer $({PROG} token URL)" URL. '
            "Exit status: 0 success, 1 failure (the message says what to do), 2 usage error."
        ),
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_login(commands, common)
    add_token(commands, common)
    add_status(commands, common)
    add_logout(commands, common)
    command_parser(
        commands,
        common,
        "doctor",
        help="check versions, the keyring, the store and its permissions",
        description="Check the set-up; exit 1, saying what to do, when something is wrong.",
    )

    add_proxy(commands)
    return parser


def command_parser(
    commands: Commands, common: argparse.ArgumentParser, name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """The parser of one command, with the global options; it is also where a check of the
    command's arguments says what is wrong (``args.parser``)."""
    parser = commands.add_parser(name, parents=[common], help=help, description=description)
    parser.set_defaults(parser=parser)
    return parser


def add_global_options(common: argparse.ArgumentParser) -> None:
    # default=SUPPRESS: these actions are shared with every command's parser (argparse
    # parents), so a default would overwrite `--debug COMMAND`; complete() fills them in.
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


def add_login(commands: Commands, common: argparse.ArgumentParser) -> None:
    login = command_parser(
        commands,
        common,
        "login",
        help="log in to a server and store its tokens",
        description="Log in (discovery, registration, browser) and store the tokens encrypted.",
    )
    login.add_argument("url", metavar="URL", help=URL_HELP)
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
    for flag, method, text in (
        ("--browser", "browser", "open the system browser (default)"),
        (
            "--paste",
            "paste",
            "print the URL; paste back the address the browser ends on (headless machines)",
        ),
        ("--device", "device", "device code flow (RFC 8628), where the server offers it"),
    ):
        how.add_argument(flag, dest="method", action="store_const", const=method, help=text)


def add_token(commands: Commands, common: argparse.ArgumentParser) -> None:
    token = command_parser(
        commands,
        common,
        "token",
        help="print a valid access token (refreshing it when needed)",
        description=(
            "Print the access token and a newline, and nothing else, on stdout; refresh it "
            "first when it has expired. Never opens a browser unless --login is given."
        ),
    )
    token.add_argument("url", metavar="URL", help=URL_HELP)
    token.add_argument(
        "--header", action="store_true", help="print 'Authorization: Bearer ...' instead"
    )
    token.add_argument(
        "--login", action="store_true", help="log in (browser) when there is no usable token"
    )


def add_status(commands: Commands, common: argparse.ArgumentParser) -> None:
    status = command_parser(
        commands,
        common,
        "status",
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


def add_logout(commands: Commands, common: argparse.ArgumentParser) -> None:
    logout = command_parser(
        commands,
        common,
        "logout",
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


def complete(args: argparse.Namespace) -> None:
    """Fill in the global options, then check what argparse cannot say by itself; a failure
    here is a usage error (exit 2). Every URL is put in its canonical form, so a malformed
    one is a usage error too."""
    args.debug = bool(getattr(args, "debug", False))
    args.store = getattr(args, "store", None)
    args.allow_http = bool(getattr(args, "allow_http", False))
    parser: argparse.ArgumentParser = args.parser
    if args.store is not None and not args.store.strip():
        parser.error("--store needs a folder (empty: the current folder was never meant)")
    if getattr(args, "url", None) is not None:  # "" too: an empty URL is a bad argument
        from .. import ConfigurationError, canonical_resource_url, secure_resource_url

        try:
            args.url = canonical_resource_url(args.url)
            if args.command != "status":  # each of the others sends a token, or asks for one
                args.url = secure_resource_url(args.url, allow_insecure_http=args.allow_http)
        except ConfigurationError as exc:
            parser.error(str(exc))
    if args.command == "login":
        if args.client_secret_stdin and not args.client_id:
            parser.error("--client-secret-stdin needs --client-id")
        if args.port is not None and not 0 < args.port < 65536:
            parser.error(f"--port must be between 1 and 65535, not {args.port}")
        if args.port is not None and args.method == "device":
            parser.error("--port has no use with --device")
    elif args.command == "logout":
        if args.all and args.url:
            parser.error("give a URL or --all, not both")
        if not args.all and not args.url:
            parser.error("give the URL to log out of, or --all")
