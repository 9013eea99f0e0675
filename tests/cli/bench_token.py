"""Benchmark (not a timed test): ``mcp-client-auth token URL`` against ``import httpx``.

Why: ``token`` runs in shell prompts and ``$(...)`` in loops, so its cost is a whole process:
interpreter start, imports, one store read. The goal is at most 1.0x
``python -c "import httpx"`` with the key in a key file or the environment, at most 1.5x with
the key in the keyring. Run it by hand::

    .venv/bin/python tests/cli/bench_token.py [--runs 30] [--keyring]

It prints the median wall time of each command, run in turns so that machine load hits them
alike, and the modules ``token`` imported that it should not (httpx, asyncio, mcp, pydantic,
py-key-value-aio). ``--keyring`` keeps the key in the system keyring (needs a working one:
``mcp-client-auth doctor`` says); otherwise the key is in a key file under a temporary
XDG_CONFIG_HOME, with no D-Bus session so no keyring is tried.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

URL = "https://mcp.example.com/mcp"
UNWANTED = ("httpx", "httpx2", "asyncio", "mcp", "pydantic", "key_value", "anyio", "keyring")


def make_store(home: Path, env: dict[str, str]) -> None:
    """A store holding one valid token, written by a child with ``env`` (so the same key)."""
    code = (
        "import asyncio, sys, time\n"
        "from mcp_client_auth import TokenStore, ServerRecord, TokenSet\n"
        "store = TokenStore.default(sys.argv[1])\n"
        "tokens = TokenSet('at-' + 'x' * 40, expires_at=time.time() + 3600, refresh_token='rt')\n"
        "asyncio.run(store.put(ServerRecord(sys.argv[2], issuer='https://as.example.com',"
        " tokens=tokens)))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(home), URL],
        env=env,
        cwd=home.parent,
        check=True,
        stderr=subprocess.DEVNULL,  # the key-file warning
    )


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=env["MCP_CLIENT_AUTH_HOME"], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def imported(argv: list[str], env: dict[str, str]) -> list[str]:
    """Top-level packages from ``UNWANTED`` that the command imported."""
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        cwd=env["MCP_CLIENT_AUTH_HOME"],
        capture_output=True,
        text=True,
    )
    names = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return sorted(n for n in UNWANTED if n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keyring", action="store_true", help="key in the system keyring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MCP_CLIENT_AUTH_HOME": str(Path(tmp) / "home")}
        env.pop("MCP_CLIENT_AUTH_KEY", None)
        # Bytecode caches, as every installed package has them (a sandbox that sets
        # PYTHONDONTWRITEBYTECODE would otherwise measure compiling, mostly); kept apart.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        if not args.keyring:
            env["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
            env.pop("DBUS_SESSION_BUS_ADDRESS", None)
            env.pop("PYTHON_KEYRING_BACKEND", None)
        make_store(Path(tmp) / "home", env)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import httpx'": [sys.executable, "-c", "import httpx"],
            "python -m mcp_client_auth token URL": [
                sys.executable,
                "-m",
                "mcp_client_auth",
                "token",
                URL,
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the bytecode caches
            wall(argv, env)
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(wall(argv, env))
        median = {name: statistics.median(t) for name, t in times.items()}
        floor = median["python -c 'import httpx'"]
        where = "keyring" if args.keyring else "key file"
        print(f"median of {args.runs} runs each (key in the {where}):")
        for name, value in median.items():
            print(f"  {value * 1000:7.1f} ms  {value / floor:5.2f}x import httpx  {name}")
        token = commands["python -m mcp_client_auth token URL"]
        print(f"token imported: {', '.join(imported(token, env)) or 'none of ' + str(UNWANTED)}")


if __name__ == "__main__":
    main()
