"""Start the demo servers on their own, to try ``mcp-client-auth`` against them in a minute.

    .venv/bin/python -m examples.demo_servers             # from a checkout, with the demo extra
    .venv/bin/python -m examples.demo_servers --consent   # a consent page to click in the browser

It prints the MCP server's URL (the one to give ``mcp-client-auth login``) and serves until
Ctrl+C. Everything is on 127.0.0.1 and in memory: stopping the servers forgets every client and
token they issued, so log out first (or the stored login just stops working).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

if __package__:
    from .servers import start_demo_servers
else:  # run as a path (python examples/demo_servers): import the package beside it
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from demo_servers import start_demo_servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_servers",
        description="Run the demo authorization server and MCP server on 127.0.0.1.",
    )
    parser.add_argument(
        "--consent", action="store_true", help="show a consent page to click (default: approve)"
    )
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="access token lifetime (a short one shows `token` refreshing; default 3600)",
    )
    args = parser.parse_args(argv)
    if args.token_ttl < 1:
        parser.error("--token-ttl must be at least 1 second")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    demo = start_demo_servers(auto_approve=not args.consent, access_token_ttl=args.token_ttl)
    url = demo.mcp_url
    consent = "a consent page to click" if args.consent else "approved automatically"
    cli = _cli_command()
    print(
        f"Demo servers on 127.0.0.1 (Ctrl+C stops them; they forget everything then):\n"
        f"  MCP server            {url}   <- the URL to use\n"
        f"  authorization server  {demo.issuer} (consent: {consent})\n"
        f"\n"
        f"Try, in another terminal:\n"
        f"  {cli} login {url}\n"
        f"  {cli} token {url}\n"
        f"  {cli} status\n"
        f"  {cli} logout {url}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):  # wakes to let a signal handler run on every platform
            pass
    finally:
        demo.stop()
    print("Demo servers stopped.", flush=True)
    return 0


def _cli_command() -> str:
    """How to run the CLI from here: ``mcp-client-auth`` when that is the one on PATH, else the
    one installed beside this Python (``.venv/bin/mcp-client-auth`` in a venv not activated)."""
    beside = Path(sys.executable).with_name("mcp-client-auth")
    if not beside.exists() or shutil.which("mcp-client-auth") == str(beside):
        return "mcp-client-auth"
    relative = os.path.relpath(beside)
    return str(beside) if relative.startswith("..") else relative


if __name__ == "__main__":
    sys.exit(main())
