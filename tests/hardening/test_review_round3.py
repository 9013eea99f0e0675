"""Third review round: defects found in the merged second-round fixes (each test fails now).

Every server here is on 127.0.0.1 (a uvicorn app from :mod:`.hostile`) or a fixed response in
memory; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mcp_client_auth import MCPAuthError, RegistrationError
from mcp_client_auth.effects import HttpRequest, HttpResponse
from mcp_client_auth.flow_clients import FlowHttp
from mcp_client_auth.flow_http import send_sync
from mcp_client_auth.metadata import UrlRules
from mcp_client_auth.registration import ClientSettings, _registration, update_registration
from mcp_client_auth.tokens import ClientRegistration
from tests.servers.in_thread import serve_in_thread
from tests.servers.processes import listening_socket

RAT = "rat-SECRET-0123456789abcdef"


@pytest.fixture
def loopback_server() -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with 200 ``{}``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    served = serve_in_thread(app, listening_socket())
    try:
        yield f"http://127.0.0.1:{served.port}"
    finally:
        served.stop()


def test_registration_access_token_a_header_cannot_carry_is_not_kept() -> None:
    """RFC 7592's registration_access_token is sent as ``Authorization: Bearer``, like an access
    token; F6 refuses an access token with CR/LF, but a registration answer's token is kept
    as is, and every later update fails with it (see the next test)."""
    endpoint = "https://as.example.com/register"
    body = (
        '{"client_id":"c1","registration_client_uri":"https://as.example.com/reg/c1",'
        '"registration_access_token":"' + RAT + '\\r\\nX-Injected: yes"}'
    ).encode()
    response = HttpResponse(200, {"content-type": "application/json"}, body, endpoint)
    try:
        client = _registration(
            response, endpoint, {"redirect_uris": []}, issuer="https://as.example.com"
        )
    except RegistrationError as exc:
        assert RAT not in str(exc)
        return
    assert client.registration_access_token is None or "\r" not in (
        client.registration_access_token
    ), "a registration_access_token with CR/LF was stored: it can never be sent in a header"


def test_transport_error_never_quotes_the_request_credentials(loopback_server: str) -> None:
    """A request whose header h11 refuses (here a stored registration_access_token with CR/LF,
    as the registration above keeps it) becomes a typed error quoting h11's text, which holds
    the whole header: ``Illegal header value b'Bearer rat-SECRET...'``. ``flow_http._unreachable``
    cleans that text but does not cut what the request sent (``sent_secrets``), unlike every
    error built from a server's answer (``read_error``)."""
    stored = ClientRegistration(
        client_id="c1",
        token_endpoint_auth_method="none",
        redirect_uris=("http://127.0.0.1:5555/callback",),
        issuer=loopback_server,
        kind="dynamic",
        registration_access_token=RAT + "\r\nX-Injected: yes",
        registration_client_uri=loopback_server + "/reg/c1",
    )
    flow = update_registration(
        ClientSettings("test"),
        stored,
        scope="read",
        rules=UrlRules.for_resource(loopback_server + "/mcp"),
    )
    effect = next(flow)
    assert isinstance(effect, HttpRequest)
    http = FlowHttp()
    client = http.sync_client(httpx, effect.url)
    try:
        with pytest.raises(MCPAuthError) as caught:
            send_sync(client, effect)
    finally:
        http.release_sync(client)
    assert RAT not in str(caught.value), str(caught.value)


def test_orphan_key_listing_never_opens_a_key_file_through_a_link(
    isolated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F21's rule, "key files are opened without following links", is kept by the key reader
    (``open_private``) but not by ``keys._store_of_key_file``, which ``orphan_key_files`` (and
    so ``logout --all`` and ``doctor``) runs over every ``*.key`` with a plain ``open()``. A
    link there to a FIFO blocks the command for ever; to any other file, reads it."""
    import os
    import threading

    from mcp_client_auth.store import keys

    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated / ".config"))
    folder = keys.key_file_path("/").parent
    folder.mkdir(parents=True, mode=0o700)
    fifo = isolated / "fifo"
    os.mkfifo(fifo)
    (folder / ("0" * 16 + ".key")).symlink_to(fifo)
    done = threading.Event()

    def run() -> None:
        keys.orphan_key_files()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert done.wait(3), "orphan_key_files followed a link to a FIFO and blocks"
    finally:
        if not done.is_set():  # free the blocked open(): a writer, at once closed
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            thread.join(3)


def test_sdk_storage_set_tokens_with_a_huge_expires_in_is_no_overflow_error() -> None:
    """F3's class in the SDK adapter: ``SDKTokenStorage.set_tokens`` computes
    ``time.time() + int(expires_in)``; the SDK's ``OAuthToken`` takes any JSON integer, so a
    token answer with ``"expires_in": 1e400-as-integer`` raises a raw OverflowError out of the
    storage. It must keep the token (with the expiry capped, as ``server_number`` does) or raise
    the library's typed error."""
    import asyncio

    pytest.importorskip("mcp")
    from mcp.shared.auth import OAuthToken

    from mcp_client_auth import SDKTokenStorage, TokenStore

    token = OAuthToken.model_validate_json(
        '{"access_token":"at-1","token_type":"Bearer","expires_in":1' + "0" * 400 + "}"
    )
    storage = SDKTokenStorage("https://mcp.example.com/mcp", store=TokenStore.memory())
    try:
        asyncio.run(storage.set_tokens(token))
    except MCPAuthError:
        return
    except OverflowError as exc:
        pytest.fail(f"raw OverflowError from set_tokens: {exc}")
    again = asyncio.run(storage.get_tokens())
    assert again is not None and again.access_token == "at-1"


_LOCATIONS = {
    "bidi-in-port": "https://mcp.example.com:443\u202e/x",  # httpx's own client refuses it well
    "port-out-of-range": "https://mcp.example.com:99999/x",
    "unbalanced-bracket": "https://[/x",
}


@pytest.mark.parametrize(
    ("combo", "location"),
    [
        pytest.param(combo, url, id=f"{name}-{combo}")
        for name, url in _LOCATIONS.items()
        for combo in ("httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async")
        if not (name == "bidi-in-port" and not combo.startswith("httpx2"))
    ],
)
def test_metadata_redirect_to_an_unusable_location_is_a_discovery_error(
    combo: str, location: str
) -> None:
    """A metadata server's redirect is server text like any other (F10: the flow's own
    requests end in the library's typed errors). ``flow_http._redirect_target`` joins the
    ``Location`` with ``response.url.join``: with httpx2 an unusable port escapes as a raw
    ``httpx2.InvalidURL``; otherwise ``metadata.origin`` calls the server's URL the user's
    mistake (``ConfigurationError: not a usable URL``) without saying a server sent it."""
    from mcp_client_auth import DiscoveryError

    from .drive import outcome, provider
    from .hostile import Hostile, Reply

    servers = Hostile(hooks={"prm": lambda seen: Reply(302, b"", [("location", location)])})
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, DiscoveryError), (
        f"{type(error).__module__}.{type(error).__name__}: {error}"
    )
    assert "\u202e" not in str(error)


def test_plain_http_endpoint_error_quotes_the_url_bounded() -> None:
    """``UrlRules.check`` refuses a plain-http endpoint with ``must use https: {url}``: the
    server's URL raw, where its sibling messages use ``_show`` (quoted, bounded): a hostile
    metadata document puts 200 KB into the error, and into every log line that prints it."""
    from mcp_client_auth import DiscoveryError

    from .drive import outcome, provider
    from .hostile import Hostile

    servers = Hostile(asm_extra={"token_endpoint": "http://as.example.com/" + "a" * 200_000})
    error = outcome(servers, provider(servers))
    assert isinstance(error, DiscoveryError), repr(error)
    message = str(error)
    assert len(message) < 2000, len(message)


def test_registered_client_id_outside_vschar_is_refused() -> None:
    """RFC 6749 A.1: a client_id is ``*VSCHAR``. ``_registration`` takes any non-empty string,
    so a hostile server's ``"c1\\r\\nERROR forged line"`` is stored and later logged raw
    (the authorization code grant's ``"%s refused client %s the scope %r"``, a forged log
    line for any application with an ordinary logging handler) and sent in every form. Refuse it as
    ``token_set_from_response`` refuses such an access token."""
    endpoint = "https://as.example.com/register"
    body = b'{"client_id":"c1\\r\\n2026-12-07 ERROR forged line"}'
    response = HttpResponse(201, {"content-type": "application/json"}, body, endpoint)
    with pytest.raises(RegistrationError):
        _registration(response, endpoint, {"redirect_uris": []}, issuer="https://as.example.com")


@pytest.mark.parametrize("combo", ["httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async"])
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            {"prm_extra": {"authorization_servers": ["https://as2.example.com/" + "b" * 70_000]}},
            id="authorization-server-70k",
        ),
        pytest.param(
            {"asm_extra": {"token_endpoint": "https://auth.example.com/" + "d" * 70_000}},
            id="token-endpoint-70k",
        ),
    ],
)
def test_server_url_longer_than_httpx_takes_is_a_typed_error(
    combo: str, extra: dict[str, Any]
) -> None:
    """A server-supplied URL passes ``UrlRules.check`` whatever its length, then httpx refuses
    to build the request (``InvalidURL: URL too long``, past 65536 characters), which is no
    transport error: a raw ``httpx.InvalidURL`` / ``httpx2.InvalidURL`` escapes the flow in
    all four drivers (F10's class)."""
    from .drive import outcome, provider
    from .hostile import Hostile

    servers = Hostile(**extra)
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, MCPAuthError), (
        f"{type(error).__module__}.{type(error).__name__}: {error}"
    )


def test_resource_mismatch_error_quotes_the_resource_bounded() -> None:
    """``discovery.discover_resource_metadata`` quotes the PRM's ``resource`` with ``!r`` but
    without a bound: a 200 KB ``resource`` makes a 200 KB error (and log line)."""
    from mcp_client_auth import DiscoveryError

    from .drive import outcome, provider
    from .hostile import Hostile

    servers = Hostile(prm_extra={"resource": "https://mcp.example.com/other" + "a" * 200_000})
    error = outcome(servers, provider(servers))
    assert isinstance(error, DiscoveryError), repr(error)
    assert len(str(error)) < 2000, len(str(error))


_HOSTS = {
    "bad-punycode-label": "https://xn--a.example.com/token",  # httpx2 already refuses it well
    "arabic-digits-host": "https://\u0661\u0662.com/token",
    "fullwidth-host": "https://\uff41.example.com/token",
}


@pytest.mark.parametrize(
    ("combo", "endpoint"),
    [
        pytest.param(combo, url, id=f"{name}-{combo}")
        for name, url in _HOSTS.items()
        for combo in ("httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async")
        if not (name == "bad-punycode-label" and combo.startswith("httpx2"))
    ],
)
def test_server_host_httpx_cannot_encode_is_a_typed_error(combo: str, endpoint: str) -> None:
    """``UrlRules.check`` accepts hosts that httpx cannot turn into a request: its
    ``build_request`` (``flow_http._open_sync``/``_open_async``) raises a raw
    ``httpx.InvalidURL: Invalid IDNA hostname`` or even ``idna.core.InvalidCodepoint`` (for
    ``xn--a``), neither a transport error, so they escape the flow untyped."""
    from .drive import outcome, provider
    from .hostile import Hostile

    servers = Hostile(asm_extra={"token_endpoint": endpoint})
    error = outcome(servers, provider(servers, combo=combo), combo=combo)
    assert isinstance(error, MCPAuthError), (
        f"{type(error).__module__}.{type(error).__name__}: {error}"
    )


def test_device_code_shown_without_a_show_method_is_cleaned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """F25's rule stops at ``Login.show_device_code``'s default: for a login of
    the caller's own (the public ``Login``/``LoginSession`` API) whose session asks for the
    device flow (answers ``UseDeviceFlow``) and has no ``show``, it ``print``s the server's
    ``user_code`` (never checked past "a non-empty string") raw to stderr: ANSI escapes and
    bidi overrides reach the terminal. ``DeviceLogin.show`` cleans the same text."""
    import asyncio

    from mcp_client_auth import Login, LoginSession, OAuthClientProvider, TokenStore
    from mcp_client_auth.login.base import UseDeviceFlow

    from .hostile import Hostile, Reply, Seen

    servers = Hostile()
    device = "https://auth.example.com/device_authorization"
    servers.asm_extra["device_authorization_endpoint"] = device
    answer = {
        "device_code": "dc-1",
        "user_code": "\x1b]0;owned\x07\x1b[2J\u202eEDOC",
        "verification_uri": "https://auth.example.com/device",
        "expires_in": 600,
        "interval": 1,
    }

    def device_answer(seen: Seen) -> Reply | None:
        return Reply.json(answer) if seen.url == device else None

    servers.hooks["unknown"] = device_answer
    servers.on_grant(
        "urn:ietf:params:oauth:grant-type:device_code",
        lambda seen: Reply.json({"error": "access_denied"}, 400),
    )

    class Session(LoginSession):
        def __init__(self) -> None:
            self.redirect_uri = "http://127.0.0.1:8765/callback"

        async def complete(
            self, authorization_url: str, *, state: str, timeout: float
        ) -> str | UseDeviceFlow:
            return UseDeviceFlow()

    class MyLogin(Login):
        async def start(self, *, redirect_uri: Any, redirect_port: Any) -> LoginSession:
            return Session()

    auth = OAuthClientProvider(
        servers.resource,
        store=TokenStore.memory(),
        login=MyLogin(),
        transport=httpx.MockTransport(servers.handler),
    )

    async def run() -> None:
        # the server denies the device login; what matters is what was printed
        with contextlib.suppress(Exception):
            await asyncio.wait_for(auth.aget_token(), 20)

    asyncio.run(run())
    err = capsys.readouterr().err
    assert "EDOC" in err, "the device code was not shown at all"
    assert "\x1b" not in err and "\u202e" not in err, ascii(err)


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("https://auth.example.com/" + "r" * 70_000, id="70k-long"),
        pytest.param("https://\u0661\u0662.com/revoke", id="arabic-digits-host"),
    ],
)
def test_logout_forgets_the_tokens_whatever_the_revocation_endpoint(endpoint: str) -> None:
    """``flow.logout`` promises the tokens are forgotten whatever the server answers, and
    catches only ``TokenError`` around the revocation request. A revocation endpoint httpx
    cannot build a request for (see the two tests above) raises a raw ``httpx.InvalidURL``
    out of ``alogout``, and the tokens stay stored: a hostile authorization server keeps the
    user from logging out (the CLI says "unexpected InvalidURL")."""
    import asyncio

    from mcp_client_auth import TokenStore
    from mcp_client_auth._portal import run_sync

    from .drive import provider, send
    from .hostile import Hostile

    servers = Hostile(asm_extra={"revocation_endpoint": endpoint})
    store = TokenStore.memory()
    auth = provider(servers, store)
    assert send(servers, auth).status_code == 200
    try:
        asyncio.run(auth.alogout())
    except MCPAuthError:
        pass
    except Exception as exc:
        pytest.fail(f"raw {type(exc).__module__}.{type(exc).__name__} from logout: {exc}")
    finally:
        record = run_sync(store.get(servers.resource))
        assert record is None or record.tokens is None, "the tokens are still stored"
