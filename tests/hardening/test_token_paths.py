"""Which requests get the token: decided on the path as the server will see it.

The request goes out with its raw (percent-encoded) path, and a server normalises that path
(RFC 3986: encoded unreserved characters decoded, dot segments removed) before routing it. So
``/mcp/%2e%2e/admin`` is ``/admin`` to the server, and must not carry the token of ``/mcp``;
an encoded slash, backslash or percent sign is read differently by different servers, so a
path holding one never matches. Checked in all four drivers.
"""

from __future__ import annotations

import pytest

from mcp_client_auth.metadata import normalized_path, path_covers

from .drive import COMBOS, provider, send
from .hostile import Hostile

ORIGIN = "https://mcp.example.com"

# the path of a request, and whether the token of https://mcp.example.com/mcp goes with it
PATHS = [
    ("/mcp", True),
    ("/mcp/tools", True),
    ("/mcp/", True),
    ("/mcp/%7Etools", True),  # ~, unreserved: the same path decoded
    ("/m%63p/tools", True),  # c, unreserved
    ("/mcp/x/%2e%2e/tools", True),  # /mcp/tools to the server
    ("/mcp/%2e%2e/admin", False),  # /admin to the server
    ("/mcp/%2E%2e/admin", False),
    ("/mcp/.%2E/admin", False),
    ("/mcp/%2e%2e", False),  # /
    ("/mcp%2Fadmin", False),  # one segment "mcp%2Fadmin", or /mcp/admin: servers differ
    ("/mcp%2fadmin", False),
    ("/mcp/..%2Fadmin", False),
    ("/mcp/%2e%2e%2fadmin", False),
    ("/mcp/%252e%252e/admin", False),  # double encoding: /mcp/../admin to a second decoder
    ("/mcp%252Fadmin", False),
    ("/mcp/..;/admin", False),  # one level up to servers that drop path parameters
    ("/mcp/%2e%2e;x/admin", False),
    ("/mcp;x", False),
    ("/mcpx", False),
    ("/mcp/%5C..%5Cadmin", False),  # a backslash is a separator to some servers
    ("/mcp/%c0%ae%c0%ae/admin", False),  # overlong UTF-8 dots, decoded by some servers
    ("/mcp/%u002e%u002e/admin", False),  # %u escapes, decoded by some servers
    ("/mcp/caf%C3%A9", True),  # UTF-8 is fine
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize(("path", "attached"), PATHS)
def test_the_token_goes_only_where_the_server_sees_the_resource(
    combo: str, path: str, attached: bool
) -> None:
    servers = Hostile()
    auth = provider(servers, combo=combo)
    assert send(servers, auth, combo=combo).status_code == 200  # logged in
    servers.seen.clear()
    send(servers, auth, combo=combo, url=ORIGIN + path)
    first = servers.seen[0]
    assert first.url == ORIGIN + path  # sent as written: the check is on what goes out
    assert ("authorization" in first.headers) is attached, first.headers
    if not attached:  # and no flow step was taken for it either
        assert [s.url for s in servers.seen] == [ORIGIN + path]


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("/mcp", "/mcp"),
        ("/mcp/%2e%2e/admin", "/admin"),
        ("/a/b/../c/./d", "/a/c/d"),
        ("/a/%2E", "/a/"),
        ("/..", "/"),
        ("/%41%7e%5f", "/A~_"),
        ("/a%3bb", "/a%3Bb"),  # reserved: kept encoded, in upper case
        ("/a%2Fb", None),
        ("/a%25b", None),
        ("/a\\b", None),
        ("/a/.;x/b", None),
        ("/a;x/b", "/a;x/b"),
    ],
)
def test_normalized_path(raw: str, seen: str | None) -> None:
    assert normalized_path(raw) == seen


def test_a_resource_path_with_encodings_covers_its_own_spellings() -> None:
    assert path_covers("/m%63p", "/mcp/tools")
    assert path_covers("/mcp", "/m%63p")
    assert path_covers("/", "/anything/at/all")
    assert not path_covers("/a%2Fb", "/a%2Fb")  # ambiguous even when spelled the same
