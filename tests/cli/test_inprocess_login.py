"""``login``, run in-process against the demo servers, with a person pasting the answer.

What is proved: a login stores the tokens and says on stderr (never stdout) where they are and
how the key is kept, without any secret; a second login on another ``--port`` says what became
of the client; a client secret comes from stdin and an empty stdin is a one-line failure; an
option the library refuses is a usage error (exit 2); a server out of reach is
a one-line failure (exit 1) and stores nothing.
"""

from __future__ import annotations

import socket

from demo_servers import DemoServers
from demo_servers.servers import loopback_socket

from .inprocess import URL, InProcess


def test_login_stores_the_tokens_and_says_where(run_cli: InProcess, demo: DemoServers) -> None:
    ran = run_cli.login(demo.mcp_url)
    assert (ran.code, ran.stdout) == (0, "")
    record = run_cli.record(demo.mcp_url)
    assert record is not None and record.tokens is not None and record.client is not None
    said = ran.stderr.split(f"✓ Logged in to {demo.mcp_url}\n", 1)[1]
    assert said.splitlines() == [
        f"  issuer          {demo.issuer}",
        f"  client id       {record.client.client_id} (dynamic registration, public client)",
        f"  scopes          {record.tokens.scope or '(none stated)'}",
        said.splitlines()[3],
        "  refresh token   present",
        f"  stored in       encrypted files in {run_cli.cli.home}",
        said.splitlines()[6],
    ]
    assert said.splitlines()[3].startswith("  access token    valid bearer, expires in ")
    assert "protected only by file permissions" in said.splitlines()[6]
    for secret in (record.tokens.access_token, record.tokens.refresh_token or "-"):
        assert secret not in ran.output
    assert run_cli("token", demo.mcp_url).stdout == record.tokens.access_token + "\n"


def test_a_login_on_another_port_says_what_became_of_the_client(
    run_cli: InProcess, demo: DemoServers
) -> None:
    assert run_cli.login(demo.mcp_url).code == 0
    with loopback_socket() as free:
        port = free.getsockname()[1]
    ran = run_cli.login(demo.mcp_url, "--port", str(port))
    assert ran.code == 0, ran.stderr
    [moved] = [line for line in ran.stderr.splitlines() if "redirect URI" in line]
    assert moved.startswith(f"  redirect URI    http://127.0.0.1:{port}/callback ("), moved
    record = run_cli.record(demo.mcp_url)
    assert record is not None and record.client is not None
    assert list(record.client.redirect_uris) == [f"http://127.0.0.1:{port}/callback"]


def test_an_empty_stdin_holds_no_client_secret(run_cli: InProcess) -> None:
    ran = run_cli("login", URL, "--client-id", "my-app", "--client-secret-stdin", stdin="\n")
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error == ("error: --client-secret-stdin was given, but stdin held no client secret")


def test_an_option_the_library_refuses_is_a_usage_error(run_cli: InProcess) -> None:
    ran = run_cli("login", URL, "--issuer", "ftp://as.example.com")
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.error == (
        "error: issuer= is not an absolute https URL (not an absolute http or https URL): "
        "'ftp://as.example.com' (see `mcp-client-auth login --help`)"
    )
    assert run_cli.record(URL) is None


def test_a_server_out_of_reach_is_a_one_line_failure(run_cli: InProcess) -> None:
    with socket.socket() as held:  # bound, never listening: a connection is refused
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}/mcp"
        ran = run_cli("login", url, "--paste")
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.error.startswith("error: could not reach http://127.0.0.1:"), ran.error
    assert run_cli.record(url) is None
