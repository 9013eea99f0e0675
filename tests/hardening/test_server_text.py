"""Text and URLs from a server: no control, bidi or invisible character reaches a person raw.

One rule (:func:`mcp_client_auth.untrusted.clean_text`) for everything printed, logged or
raised: C0 and C1 controls, DEL, line separators, bidirectional marks, overrides and isolates,
zero-width characters become visible escapes (``\\x9b``, ``\\u202e``), never silently dropped,
so what is shown is what was sent. A URL holding one of them is refused by the URL validation,
so an authorization URL built from server metadata never carries one to the terminal.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest

from mcp_client_auth import DiscoveryError, MCPAuthError
from mcp_client_auth.login import DeviceLogin, PasteLogin
from mcp_client_auth.metadata import require_secure_url
from mcp_client_auth.untrusted import clean_text, has_unsafe_characters

from .drive import COMBOS, assert_clean, outcome, provider
from .hostile import Hostile, Reply, Seen

pytestmark = pytest.mark.timeout(60)

# every character the rule is about, one of each kind
HIDDEN = {
    "\x00": "\\x00",
    "\x1b": "\\x1b",
    "\x7f": "\\x7f",
    "\x85": "\\x85",  # C1: next line
    "\x9b": "\\x9b",  # C1: the one-byte CSI, a terminal escape on its own
    "\u061c": "\\u061c",  # Arabic letter mark
    "\u200b": "\\u200b",  # zero-width space
    "\u200d": "\\u200d",  # zero-width joiner
    "\u200e": "\\u200e",  # left-to-right mark
    "\u200f": "\\u200f",  # right-to-left mark
    "\u2028": "\\u2028",  # line separator
    "\u202a": "\\u202a",
    "\u202e": "\\u202e",  # right-to-left override
    "\u2066": "\\u2066",  # left-to-right isolate
    "\u2069": "\\u2069",  # pop directional isolate
    "\ufeff": "\\ufeff",
}


def raw_hidden(text: str) -> list[str]:
    return [char for char in HIDDEN if char in text]


@pytest.mark.parametrize(("char", "escape"), HIDDEN.items())
def test_clean_text_shows_each_hidden_character_as_an_escape(char: str, escape: str) -> None:
    text = clean_text(f"invalid{char}scope")
    assert text == f"invalid{escape}scope"


def test_clean_text_keeps_ordinary_text_and_non_latin_letters() -> None:
    assert clean_text("scope 'read' is not allowed: café, 読み取り") == (
        "scope 'read' is not allowed: café, 読み取り"
    )


@pytest.mark.parametrize("char", list(HIDDEN))
def test_url_with_a_hidden_character_is_refused(char: str) -> None:
    with pytest.raises(DiscoveryError, match="authorization endpoint") as caught:
        require_secure_url(
            f"https://auth.example.com/auth{char}orize", what="authorization endpoint"
        )
    assert not raw_hidden(str(caught.value))
    assert has_unsafe_characters(f"https://a.example/{char}")


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("field", ["authorization_endpoint", "token_endpoint", "issuer-list"])
@pytest.mark.parametrize("char", ["\x9b", "\u202e", "\u2066", "\u200f", "\u200d"])
def test_metadata_url_with_a_hidden_character_is_refused(field: str, char: str, combo: str) -> None:
    servers = Hostile()
    if field == "issuer-list":
        servers.prm_extra["authorization_servers"] = [f"https://auth.example.com{char}"]
    else:
        servers.asm_extra[field] = f"https://auth.example.com/x{char}gnp.exe"
    logins: list[str] = []

    def login(url: str) -> str:
        logins.append(url)
        return servers.approve(url)

    error = outcome(servers, provider(servers, login=login, combo=combo), combo=combo)
    assert_clean(error, DiscoveryError, r"not an absolute https URL|hidden|control")
    assert not raw_hidden(str(error)) and not logins


def test_paste_login_prints_no_hidden_character() -> None:
    output = io.StringIO()
    login = PasteLogin(input=io.StringIO(""), output=output)

    async def run() -> None:
        session = await login.start(redirect_uri="http://127.0.0.1:5/callback", redirect_port=None)
        try:
            await session.complete("https://as.example/a?x=\u202e\x9b1", state="s", timeout=5)
        except MCPAuthError:
            pass
        finally:
            await session.aclose()

    asyncio.run(run())
    assert not raw_hidden(output.getvalue())
    assert "\\u202e\\x9b1" in output.getvalue()


def device_servers(answer: dict[str, Any]) -> Hostile:
    servers = Hostile()
    device = "https://auth.example.com/device_authorization"
    servers.asm_extra["device_authorization_endpoint"] = device

    def reply(seen: Seen) -> Reply | None:
        return Reply.json(answer) if seen.url == device else None

    servers.hooks["other"] = servers.hooks["unknown"] = reply
    servers.on_grant(
        "urn:ietf:params:oauth:grant-type:device_code",
        lambda seen: Reply.json({"error": "access_denied"}, 400),
    )
    return servers


GOOD_DEVICE = {
    "device_code": "dc-1",
    "user_code": "WDJB-MJHT",
    "verification_uri": "https://auth.example.com/device",
    "expires_in": 600,
    "interval": 1,
}


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("field", ["verification_uri", "verification_uri_complete"])
def test_device_verification_page_with_a_bidi_override_is_refused(field: str, combo: str) -> None:
    servers = device_servers({**GOOD_DEVICE, field: "https://auth.example.com/\u202eexe.gnp"})
    output = io.StringIO()
    auth = provider(servers, login=DeviceLogin(output=output), timeout=5, combo=combo)
    error = outcome(servers, auth, combo=combo)
    assert_clean(error, DiscoveryError, r"verification page")
    assert not raw_hidden(str(error) + output.getvalue())
    assert not servers.token_requests()


@pytest.mark.parametrize("combo", COMBOS)
def test_device_user_code_is_shown_with_escapes(combo: str) -> None:
    servers = device_servers({**GOOD_DEVICE, "user_code": "WDJB\x1b[2J\x9b\u202eMJHT"})
    output = io.StringIO()
    auth = provider(servers, login=DeviceLogin(output=output), timeout=5, combo=combo)
    outcome(servers, auth, combo=combo)
    shown = output.getvalue()
    assert "WDJB\\x1b[2J\\x9b\\u202eMJHT" in shown
    assert not raw_hidden(shown)


# -- the command line ------------------------------------------------------------------------------


def test_status_shows_server_text_with_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    """What a hostile authorization server registered or issued (a client_id, an auth method,
    scopes) is printed by ``status`` with escapes, never as terminal codes."""
    from mcp_client_auth import TokenStore
    from mcp_client_auth.cli import main
    from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

    record = ServerRecord(
        resource="https://mcp.example.com/mcp",
        issuer="https://auth.example.com",
        client=ClientRegistration(
            client_id="client\x1b]0;owned\x07-1",
            token_endpoint_auth_method="none\u202e",
            issuer="https://auth.example.com",
        ),
        tokens=TokenSet(access_token="at-1", scope="read\x9b2J write\u2066"),
    )

    async def put() -> None:
        store = TokenStore.default()
        await store.put(record)
        await store.aclose()

    asyncio.run(put())
    library_logger = logging.getLogger("mcp_client_auth")  # main() sets up its own logging
    saved = (list(library_logger.handlers), library_logger.level, library_logger.propagate)
    try:
        assert main(["status"]) == 0
    finally:
        library_logger.handlers[:], library_logger.level, library_logger.propagate = saved
    shown = capsys.readouterr()
    assert not raw_hidden(shown.out + shown.err), shown.out
    assert "client\\x1b]0;owned\\x07-1" in shown.out
    assert "read\\x9b2J" in shown.out and "write\\u2066" in shown.out


@pytest.mark.parametrize("combo", COMBOS)
def test_a_look_alike_host_is_printed_in_its_ascii_form(combo: str) -> None:
    """A Cyrillic ``а`` in the authorization server's host: the paste login prints the
    punycode name, which does not look like the real one."""
    servers = Hostile(issuer="https://xn--uth-5cd.example.com")  # where the requests go
    look_alike = "https://\u0430uth.example.com"
    servers.prm_extra["authorization_servers"] = [look_alike]
    servers.asm_extra.update(issuer=look_alike, authorization_endpoint=f"{look_alike}/authorize")
    output = io.StringIO()
    login = PasteLogin(input=io.StringIO(""), output=output)
    outcome(servers, provider(servers, login=login, timeout=5, combo=combo), combo=combo)
    shown = output.getvalue()
    assert "https://xn--uth-5cd.example.com/authorize?" in shown, shown
    assert "\u0430" not in shown


def test_dpop_algorithms_a_server_lists_are_quoted_with_escapes() -> None:
    from mcp_client_auth import ConfigurationError

    servers = Hostile()
    servers.asm_extra["dpop_signing_alg_values_supported"] = ["RS256\x1b[2J\u202e"]
    error = outcome(servers, provider(servers, dpop=True))
    assert_clean(error, ConfigurationError, r"RS256\\x1b\[2J\\u202e")
    assert not raw_hidden(str(error))
