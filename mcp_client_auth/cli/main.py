"""The entry point: parse the command line, run one command, turn its outcome into an exit code.

Exit codes: 0 success, 1 a failure the user can act on (the message says how), 2 a usage
error, 130 cancelled. An error is one line on stderr, with a traceback only under ``--debug``.
No output ever holds a token, a refresh token or a client secret, except ``token``'s stdout,
which is the point.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .context import Context
from .logs import library_logging
from .output import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    CommandError,
    Reporter,
    Streams,
    UsageError,
    UsageExit,
    usage_error,
)
from .parser import build_parser, complete

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    Runner = Callable[[argparse.Namespace, Context], int]


def main(argv: Sequence[str] | None = None, *, streams: Streams | None = None) -> int:
    """Run the tool; return the exit status (0 success, 1 failure, 2 usage error).

    ``streams``: where to read and write (default: the process's own), so a test can run a
    command in-process.
    """
    streams = streams or Streams.system()
    try:
        args = build_parser(streams).parse_args(argv)
        if args.command is None:
            raise usage_error(
                streams, PROG, "give a command: login, token, status, logout or doctor"
            )
        complete(args)
    except UsageExit as exc:
        return exit_code(exc)
    context = Context(
        streams, store_option=args.store, allow_http=args.allow_http, debug=args.debug
    )
    with library_logging(streams, debug=args.debug):
        return run_command(args, context)


def run_command(args: argparse.Namespace, context: Context) -> int:
    """Run the chosen command, saying every way it can end in one line on stderr."""
    streams = context.streams
    report = Reporter(streams)
    try:
        return runner(args.command)(args, context)
    except UsageExit as exc:  # a command's own parser check (the proxy's options)
        return exit_code(exc)
    except UsageError as exc:
        report.error(f"{exc} (see `{args.parser.prog} --help`)")
        return EXIT_USAGE
    except CommandError as exc:
        report.error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        streams.stderr.write("\n")
        report.error("cancelled")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing left to say to anyone.
        silence(streams)
        return EXIT_FAILURE
    except Exception as exc:
        if context.debug:
            import traceback

            traceback.print_exc(file=streams.stderr)
        report.error(describe(exc, context.debug))
        return EXIT_FAILURE


def runner(command: str) -> Runner:
    """The function that runs ``command``, imported only when chosen (``token`` stays light)."""
    if command == "token":
        from .token import run_token

        return run_token
    if command == "status":
        from .status import run_status

        return run_status
    if command == "login":
        from .login import run_login

        return run_login
    if command == "logout":
        from .logout import run_logout

        return run_logout
    if command == "doctor":
        from .doctor import run_doctor

        return run_doctor
    from .proxy import run_proxy

    return run_proxy


def exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def describe(exc: BaseException, debug: bool) -> str:
    """One readable line for an error: the library's own message says what to do."""
    from .. import MCPAuthError

    if isinstance(exc, (MCPAuthError, OSError)):
        return str(exc)
    hint = "" if debug else f" (run `{PROG} --debug ...` for the details)"
    return f"unexpected {type(exc).__name__}: {exc}{hint}"


def silence(streams: Streams) -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, streams.stdout.fileno())
    except (OSError, ValueError):
        pass
