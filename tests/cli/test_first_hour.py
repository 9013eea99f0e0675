"""What a new user meets in the first hour with the command-line tool, tried as they tried it.

What is proved: a URL that is not an OAuth-protected endpoint (404 to everything) is reported
as that, with every URL tried, not as a registration refusal; a 2025-03-26 server (401, no
metadata, default endpoints at its origin) still logs in, and one whose default endpoints are
missing too is reported as having no OAuth; with no browser and no terminal, ``login`` names the
tool's own options (``--paste``, ``--device``, ``--port``), not the library's classes; every
"log in" hint names the store the user chose (``--store``), and following a hint word for word
logs in where the tokens are then found; ``login --port N`` after an earlier login listens on
N (the README's ``ssh -L`` tip) and says that the client was registered for it; one documented
command starts the demo servers on their own and prints the URL that login, token, status and
logout then work with; without a keyring, each command says so in one short line pointing to
``doctor`` (the library too, once per process), not a paragraph; a login that fails leaves no
key file behind, ``doctor`` lists the key files of store folders that are gone, and
``logout --all`` removes them.
"""

from __future__ import annotations

import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo_servers import DemoAuthorizationServer, DemoServers
from demo_servers.servers import ServedApp, loopback_socket, serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mcp_client_auth import LoginRequiredError, OAuthClientProvider, TokenStore

from ..unit.test_fixed_port import unused_fixed_port
from .conftest import CLI
from .test_login_token import INITIALIZE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "BROWSER": ""}


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], Any]], ServedApp]]:
    """Serves ``build(origin)`` (an ASGI app that may need its own origin) on 127.0.0.1."""
    served: list[ServedApp] = []

    def start(build: Callable[[str], Any]) -> ServedApp:
        sock = loopback_socket()
        app = serve_app(build(f"http://127.0.0.1:{sock.getsockname()[1]}"), sock)
        served.append(app)
        return app

    yield start
    for app in served:
        app.stop()


def not_found_everywhere(origin: str) -> Starlette:
    """A web server, but no MCP endpoint: 404 to every method and path."""

    async def nothing(request: Request) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    return Starlette(routes=[Route("/{path:path}", nothing, methods=["GET", "POST"])])


def legacy_server(origin: str, *, with_endpoints: bool = True) -> Starlette:
    """A 2025-03-26 MCP server: 401 without a token, no metadata document anywhere, and (with
    ``with_endpoints``) the default endpoints /authorize, /token and /register at its origin,
    served by the demo authorization server without its metadata route."""
    mcp_url = f"{origin}/mcp"

    async def mcp(request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse(
                {"error": "unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="mcp"'},
            )
        return JSONResponse({"jsonrpc": "2.0", "id": 0, "result": {}})

    routes = [Route("/mcp", mcp, methods=["POST"])]
    if with_endpoints:
        server = DemoAuthorizationServer(origin, resources=[mcp_url])
        routes += [r for r in server.app.routes if "well-known" not in getattr(r, "path", "")]
    return Starlette(routes=routes)


def test_a_url_that_is_not_an_oauth_endpoint_is_said_to_be_one(
    cli: CLI, serve: Callable[[Callable[[str], Any]], ServedApp]
) -> None:
    url = serve(not_found_everywhere).origin + "/mcp"
    run = cli.login(url)
    assert run.returncode == 1, run.output
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: no OAuth metadata found at any of: "), line
    for tried in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ):
        assert tried in line, line
    assert "answered HTTP 404, not 401" in line and "check the URL" in line, line
    assert "regist" not in line and "client_id" not in line, line


def test_a_2025_03_26_server_without_metadata_still_logs_in(
    cli: CLI, serve: Callable[[Callable[[str], Any]], ServedApp]
) -> None:
    app = serve(legacy_server)
    run = cli.login(app.origin + "/mcp")
    assert run.returncode == 0, run.output
    record = cli.record(app.origin + "/mcp")
    assert record is not None and record.tokens is not None
    assert record.issuer == app.origin
    assert record.server_metadata is not None
    assert record.server_metadata["token_endpoint"] == app.origin + "/token"


def test_a_401_without_any_oauth_behind_it_is_not_a_registration_refusal(
    cli: CLI, serve: Callable[[Callable[[str], Any]], ServedApp]
) -> None:
    app = serve(lambda origin: legacy_server(origin, with_endpoints=False))
    run = cli.login(app.origin + "/mcp")
    assert run.returncode == 1, run.output
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: no OAuth metadata found at any of: "), line
    assert f"the default registration endpoint {app.origin}/register answered HTTP 404" in line
    assert "check the URL" in line and "refused" not in line, line


def browser_elsewhere(authorization_url: str) -> None:
    """A browser on another machine, through ``ssh -L``: it approves at the demo authorization
    server and follows the redirect to the loopback listener; nothing is pasted."""
    approved = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    assert approved.status_code == 302, approved.text
    answer = httpx.get(approved.headers["location"], timeout=20)
    assert answer.status_code == 200, answer.text


def test_login_port_wins_over_the_stored_client(cli: CLI, demo: DemoServers) -> None:
    assert cli.login(demo.mcp_url).returncode == 0  # an earlier login, on a free port
    first = cli.record(demo.mcp_url)
    assert first is not None and first.client is not None
    port = unused_fixed_port()
    assert f":{port}/" not in (first.client.redirect_uri or "")

    cli.env.update(NO_DISPLAY)  # an SSH session: no browser here, no terminal on stdin
    run = cli.login(
        demo.mcp_url, "--port", str(port), method="--browser", browser=browser_elsewhere
    )
    assert run.returncode == 0, run.output
    assert f"ssh -L {port}:127.0.0.1:{port}" in run.stderr
    moved = f"http://127.0.0.1:{port}/callback"
    assert f"redirect URI    {moved} (a new client was registered for it" in run.stderr
    record = cli.record(demo.mcp_url)
    assert record is not None and record.client is not None and record.tokens is not None
    assert record.client.redirect_uris == (moved,)
    # the demo server has no RFC 7592 registration updates: a second registration
    assert demo.authorization_server.stats["registrations"] == 2


def test_a_second_login_on_the_same_port_keeps_listening(cli: CLI, demo: DemoServers) -> None:
    """The SSH tip, twice: the stored client already uses the user's port, which is still the
    user's port (a browser elsewhere), so the login waits for it instead of giving up."""
    port = unused_fixed_port()
    cli.env.update(NO_DISPLAY)  # an SSH session: no browser here, no terminal on stdin
    for _ in range(2):
        run = cli.login(
            demo.mcp_url, "--port", str(port), method="--browser", browser=browser_elsewhere
        )
        assert run.returncode == 0, run.output
        assert f"ssh -L {port}:127.0.0.1:{port}" in run.stderr
        assert cli("logout", demo.mcp_url).returncode == 0
    assert demo.authorization_server.stats["registrations"] == 1  # the same client, twice


def hinted_command(text: str) -> list[str]:
    """The command a message tells the user to run (```run `...```), as argv words."""
    found = re.search(r"run `([^`]+)`", text)
    assert found, text
    return shlex.split(found.group(1))


def test_login_without_browser_or_terminal_names_the_cli_options(
    cli: CLI, demo: DemoServers
) -> None:
    run = cli("login", demo.mcp_url, input="", env=NO_DISPLAY)
    assert run.returncode == 1, run.output
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no browser could be opened"), run.stderr
    for option in ("--paste", "--device", "--port"):
        assert option in last, last
    assert "DeviceLogin" not in run.stderr and "PasteLogin" not in run.stderr
    assert "callable" not in run.stderr


def test_token_login_without_browser_or_terminal_names_the_cli_options_and_the_store(
    cli: CLI, demo: DemoServers, tmp_path: Path
) -> None:
    """``token --login`` fails the way ``login`` does, in the tool's words, and the --paste
    command it gives logs in to the same store (``--store`` given)."""
    elsewhere = tmp_path / "elsewhere"
    for argv in (
        ("token", demo.mcp_url, "--login"),
        ("--store", str(elsewhere), "login", demo.mcp_url),
    ):
        run = cli(*argv, input="", env=NO_DISPLAY)
        assert run.returncode == 1, run.output
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("error: no browser could be opened"), run.stderr
        assert "DeviceLogin" not in run.stderr and "callable" not in run.stderr, run.stderr
        words = hinted_command(last)
        assert words[:2] == ["mcp-client-auth", "login"] and "--paste" in words, words
        if "--store" in argv:
            assert words[words.index("--store") + 1] == str(elsewhere.resolve()), words
        else:
            assert "--store" not in words, words


def test_token_hint_names_the_store_and_following_it_works(
    cli: CLI, demo: DemoServers, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    run = cli("--store", str(elsewhere), "token", demo.mcp_url)
    assert run.returncode == 1, run.output
    words = hinted_command(run.stderr)
    assert words[:2] == ["mcp-client-auth", "login"], words
    assert words[words.index("--store") + 1] == str(elsewhere.resolve()), words

    # the user runs exactly that (with --paste: no browser here), then asks again
    login = cli.login(words[-1], *words[2:-1])
    assert login.returncode == 0, login.output
    again = cli("--store", str(elsewhere), "token", demo.mcp_url)
    assert again.returncode == 0, again.output
    assert cli.record(demo.mcp_url) is None  # nothing went to the default store


def test_status_hint_of_the_default_store_has_no_store_option(cli: CLI, demo: DemoServers) -> None:
    run = cli("status", demo.mcp_url)
    assert run.returncode == 1, run.output
    assert hinted_command(run.stdout) == ["mcp-client-auth", "login", demo.mcp_url]


def test_the_library_hint_names_the_store_folder(tmp_path: Path) -> None:
    store = TokenStore.default(tmp_path / "store")
    provider = OAuthClientProvider("http://127.0.0.1:9/mcp", store=store, interactive=False)
    with pytest.raises(LoginRequiredError) as caught:
        provider.get_token()
    words = hinted_command(str(caught.value))
    assert words == [
        "mcp-client-auth",
        "login",
        "--store",
        str((tmp_path / "store").resolve()),
        "http://127.0.0.1:9/mcp",
    ]

    memory = OAuthClientProvider(
        "http://127.0.0.1:9/mcp", store=TokenStore.memory(), interactive=False
    )
    with pytest.raises(LoginRequiredError, match=r"log in with this store"):
        memory.get_token()


def first_url(process: subprocess.Popen[str], pattern: str, limit: float = 90.0) -> str:
    """The first match of ``pattern`` in the process's stdout, read as it comes."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=limit)
        except queue.Empty:
            raise AssertionError(f"no URL within {limit:g} s: {seen}") from None
        if line is None:
            raise AssertionError(f"the demo servers exited: {seen}")
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found.group(0)


def test_the_demo_servers_start_on_their_own_for_the_cli(cli: CLI, tmp_path: Path) -> None:
    """The README's command: start them, read the URL, then login, token, status, logout."""
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.demo_servers"],
        cwd=ROOT,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = first_url(server, r"http://127\.0\.0\.1:\d+/mcp")
        store = str(tmp_path / "try-it")
        assert cli.login(url, "--store", store).returncode == 0
        token = cli("--store", store, "token", url)
        assert token.returncode == 0, token.output
        answer = httpx.post(
            url,
            json=INITIALIZE,
            headers={
                "Authorization": f"Bearer {token.stdout.strip()}",
                "Accept": "application/json, text/event-stream",
            },
            timeout=20,
        )
        assert answer.status_code == 200, answer.text
        status = cli("--store", store, "status", url)
        assert status.returncode == 0 and "logged in" in status.stdout, status.output
        logout = cli("--store", store, "logout", url)
        assert logout.returncode == 0 and "revoked" in logout.stderr, logout.output
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0


def keyring_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "system keyring" in line]


def test_no_keyring_is_one_short_line_pointing_to_doctor(cli: CLI, demo: DemoServers) -> None:
    login = cli.login(demo.mcp_url)
    assert login.returncode == 0, login.output
    [line] = keyring_lines(login.stderr)
    assert "protected only by file permissions" in line and "`mcp-client-auth doctor`" in line
    key_file = re.search(r"/\S+\.key", line)
    assert key_file, line
    assert len(line.replace(key_file.group(0), "")) < 160, line  # one line, not a paragraph
    status = cli("status")
    [line] = keyring_lines(status.stdout)
    assert "`mcp-client-auth doctor`" in line, status.stdout
    assert cli("token", demo.mcp_url).stderr == ""
    doctor = cli("doctor")  # the whole story is there
    assert "MCP_CLIENT_AUTH_KEY" in doctor.stdout and "Secret Service" in doctor.stdout


def test_the_library_says_no_keyring_once_in_one_line(cli: CLI, tmp_path: Path) -> None:
    script = (
        "import asyncio\n"
        "from mcp_client_auth import ServerRecord, TokenStore\n"
        "for _ in range(3):\n"
        "    store = TokenStore.default()\n"
        "    asyncio.run(store.put(ServerRecord(resource='http://127.0.0.1:9/mcp')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert "protected only by its file permissions" in line, line
    assert "`mcp-client-auth doctor` says more" in line, line


def key_files(cli: CLI) -> list[Path]:
    folder = cli.config / "mcp-client-auth" / "keys"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_failed_login_leaves_no_key_behind(
    cli: CLI, serve: Callable[[Callable[[str], Any]], ServedApp]
) -> None:
    url = serve(not_found_everywhere).origin + "/mcp"
    assert cli.login(url).returncode == 1
    assert cli("status").returncode == 0
    assert key_files(cli) == []
    assert "not created yet" in cli("status").stdout


def test_doctor_lists_key_files_of_gone_stores_and_logout_all_removes_them(
    cli: CLI, demo: DemoServers, tmp_path: Path
) -> None:
    gone = tmp_path / "a-temporary-store"
    assert cli.login(demo.mcp_url, "--store", str(gone)).returncode == 0
    assert cli.login(demo.mcp_url).returncode == 0  # the default store: it stays
    [orphan] = [k for k in key_files(cli) if str(gone.resolve()) in k.read_text()]
    shutil.rmtree(gone)

    doctor = cli("doctor")
    assert "Key files: 1 left by store folders that no longer exist" in doctor.stdout
    assert str(orphan) in doctor.stdout and "logout --all" in doctor.stdout

    logout = cli("logout", "--all")
    assert logout.returncode == 0, logout.output
    assert "Removed 1 key file of store folders that no longer exist." in logout.stderr
    assert not orphan.exists()
    assert len(key_files(cli)) == 1  # the live store's key is kept
    assert "no longer exist" not in cli("doctor").stdout


def test_the_hint_names_what_reaches_the_same_login() -> None:
    """A login at the second authorization server a resource lists, with a pre-registered
    client: the hint names both, or following it would log in elsewhere."""
    from mcp_client_auth import ClientRegistration, ServerRecord
    from mcp_client_auth.cli.context import Context
    from mcp_client_auth.cli.output import Streams

    url = "https://mcp.example.com/mcp"
    record = ServerRecord(
        resource=url,
        issuer="https://b.example.com",
        resource_metadata={
            "resource": url,
            "authorization_servers": ["https://a.example.com", "https://b.example.com"],
        },
        client=ClientRegistration(
            client_id="my-app", client_secret="s3cret", kind="pre-registered"
        ),
    )
    hint = Context(Streams.system()).login_hint(url, record)
    words = hinted_command(hint)
    assert words == [
        "mcp-client-auth",
        "login",
        "--client-id",
        "my-app",
        "--client-secret-stdin",
        "--issuer",
        "https://b.example.com",
        url,
    ]
    assert "s3cret" not in hint


def test_a_taken_port_is_said_in_cli_words(cli: CLI, demo: DemoServers) -> None:
    with loopback_socket() as taken:  # held by this test for the whole run
        port = taken.getsockname()[1]
        run = cli("login", demo.mcp_url, "--port", str(port), input="", env=NO_DISPLAY)
    assert run.returncode == 1, run.output
    [line] = run.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is in use" in line and "`--port N`" in line, line
    assert "BrowserLogin" not in line and "redirect_port" not in line, line
