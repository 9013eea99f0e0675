"""Tests for mcp_client_auth.metadata: challenges, URL rules, discovery URLs, documents."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from mcp_client_auth.errors import ConfigurationError, DiscoveryError, MCPAuthError
from mcp_client_auth.metadata import (
    MAX_CHALLENGE_HEADER_BYTES,
    MAX_DOCUMENT_BYTES,
    Challenge,
    UrlRules,
    authorization_server_metadata_urls,
    canonical_resource_url,
    fallback_server_metadata,
    find_challenge,
    is_loopback_host,
    origin,
    parse_json_document,
    parse_www_authenticate,
    protected_resource_metadata_urls,
    require_secure_url,
    resource_covers,
    validate_resource_metadata,
    validate_server_metadata,
)

# --------------------------------------------------------------------------------------------
# WWW-Authenticate
# --------------------------------------------------------------------------------------------

# every read the parser makes of a header value: at most this many per character
LINEAR_READS = 8


class CountingText(str):
    """A header value that counts how often the parser reads it (a character or a slice):
    the parser's cost, counted in steps rather than timed."""

    reads = 0

    def __getitem__(self, key: Any) -> str:
        self.reads += 1
        return str.__getitem__(self, key)


def one(header: str | list[str]) -> Challenge:
    challenges = parse_www_authenticate(header)
    assert len(challenges) == 1, challenges
    return challenges[0]


def test_mcp_bearer_insufficient_scope() -> None:
    c = one(
        'Bearer error="insufficient_scope", scope="a b", '
        'resource_metadata="https://x/.well-known/oauth-protected-resource/mcp"'
    )
    assert c.scheme == "Bearer"
    assert c.token68 is None
    assert dict(c.params) == {
        "error": "insufficient_scope",
        "scope": "a b",
        "resource_metadata": "https://x/.well-known/oauth-protected-resource/mcp",
    }


def test_dpop_challenge() -> None:
    c = one('DPoP algs="ES256", error="use_dpop_nonce"')
    assert c.scheme == "DPoP"
    assert c.param("algs") == "ES256"
    assert c.param("error") == "use_dpop_nonce"


def test_scheme_alone() -> None:
    assert one("Bearer") == Challenge("Bearer")
    assert one("  Bearer  ") == Challenge("Bearer")


def test_token_values_unquoted() -> None:
    c = one("Bearer realm=example, error=invalid_token")
    assert dict(c.params) == {"realm": "example", "error": "invalid_token"}


def test_rfc9110_example_several_challenges_in_one_value() -> None:
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    challenges = parse_www_authenticate(header)
    assert [c.scheme for c in challenges] == ["Newauth", "Basic"]
    assert dict(challenges[0].params) == {
        "realm": "apps",
        "type": "1",
        "title": 'Login to "apps"',
    }
    assert dict(challenges[1].params) == {"realm": "simple"}


def test_challenges_across_header_values() -> None:
    challenges = parse_www_authenticate(
        ['Basic realm="a"', 'Bearer resource_metadata="https://r/x", scope="s"', "DPoP"]
    )
    assert [c.scheme for c in challenges] == ["Basic", "Bearer", "DPoP"]
    assert challenges[1].param("scope") == "s"
    assert challenges[2].params == {}


def test_challenges_without_params_in_one_value() -> None:
    challenges = parse_www_authenticate("Basic, Bearer , DPoP")
    assert [c.scheme for c in challenges] == ["Basic", "Bearer", "DPoP"]


def test_quoted_string_with_commas_and_escapes() -> None:
    c = one(r'Bearer realm="a, b, c", error_description="say \"hi\", \\ ok\, x"')
    assert c.param("realm") == "a, b, c"
    assert c.param("error_description") == 'say "hi", \\ ok, x'


def test_quoted_string_with_equals_and_scheme_like_text() -> None:
    c = one('Bearer realm="Basic x=y, DPoP algs=z"')
    assert c.param("realm") == "Basic x=y, DPoP algs=z"


def test_empty_quoted_string() -> None:
    assert one('Bearer realm=""').param("realm") == ""


def test_non_ascii_in_quoted_string_is_kept() -> None:
    assert one('Bearer realm="caf\u00e9"').param("realm") == "caf\u00e9"


def test_token68() -> None:
    c = one("Basic dXNlcjpwYXNz==")
    assert c.scheme == "Basic"
    assert c.token68 == "dXNlcjpwYXNz=="
    assert c.params == {}


def test_token68_forms() -> None:
    assert one("Negotiate a87421000492aa874209af8bc028").token68 == ("a87421000492aa874209af8bc028")
    assert one("X abc/+.-_~").token68 == "abc/+.-_~"
    assert one("X abc=").token68 == "abc="
    assert one("X abc= ").token68 == "abc="
    # "realm=" with nothing after it is a token68 by the grammar, not an empty auth-param.
    assert one("Bearer realm=") == Challenge("Bearer", token68="realm=")


def test_token68_followed_by_other_challenges() -> None:
    challenges = parse_www_authenticate('Basic dXNlcjpwYXNz==, Bearer realm="r", Negotiate abc')
    assert [(c.scheme, c.token68) for c in challenges] == [
        ("Basic", "dXNlcjpwYXNz=="),
        ("Bearer", None),
        ("Negotiate", "abc"),
    ]
    assert challenges[1].param("realm") == "r"


def test_whitespace_around_equals() -> None:
    c = one('Bearer realm = "a" ,\terror\t=\tinvalid_token')
    assert dict(c.params) == {"realm": "a", "error": "invalid_token"}


def test_empty_list_elements_tolerated() -> None:
    challenges = parse_www_authenticate(' , ,Bearer realm="a",, , scope="s" ,, Basic ,')
    assert [c.scheme for c in challenges] == ["Bearer", "Basic"]
    assert dict(challenges[0].params) == {"realm": "a", "scope": "s"}


@pytest.mark.parametrize("header", ["Bearer , realm=x", "Bearer ,, , realm=x", "Bearer,realm=x"])
def test_empty_list_elements_before_the_first_param(header: str) -> None:
    # RFC 9110: "Bearer" 1*SP #auth-param, and a list may begin with empty elements. A param
    # never starts a challenge, so it belongs to the scheme before the commas.
    assert one(header) == Challenge("Bearer", {"realm": "x"})


def test_empty_list_elements_before_the_next_challenge() -> None:
    challenges = parse_www_authenticate("Bearer , , Basic realm=x")
    assert challenges == [Challenge("Bearer"), Challenge("Basic", {"realm": "x"})]


def test_empty_header_yields_no_challenges() -> None:
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate([]) == []
    assert parse_www_authenticate([" , "]) == []


def test_case_insensitive_names() -> None:
    c = one('BEARER Realm="a", ERROR="invalid_token", Scope="x"')
    assert c.scheme == "BEARER"
    assert set(c.params) == {"realm", "error", "scope"}
    assert c.param("REALM") == "a"
    assert c.param("Error") == "invalid_token"
    assert c.param("missing") is None
    assert find_challenge([c]) is c


def test_parameter_values_keep_their_case() -> None:
    assert one("Bearer error=Invalid_Token").param("error") == "Invalid_Token"


def test_repeated_param_keeps_first() -> None:
    c = one('Bearer scope="first", SCOPE="second", scope=third')
    assert c.param("scope") == "first"


def test_challenge_constructed_by_hand_is_normalised_and_read_only() -> None:
    c = Challenge("Bearer", {"Scope": "a", "scope": "b"})
    assert dict(c.params) == {"scope": "a"}
    assert c.param("SCOPE") == "a"
    with pytest.raises(TypeError):
        c.params["x"] = "y"  # type: ignore[index]
    assert "Bearer" in repr(c)
    assert "scope" in repr(c)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ('Bearer realm="abc', "unterminated quoted string"),
        ('Bearer realm="abc\\', "unterminated quoted string"),
        ('Bearer realm="a", scope="b', "unterminated quoted string"),
        ('Bearer realm="a" scope="b"', "expected ','"),
        ("Bearer realm=a b", "expected ','"),
        ("=abc", "expected an auth-scheme"),
        ('"Bearer"', "expected an auth-scheme"),
        ("Bearer a=b, c=", "unexpected character after the auth-scheme 'c'"),
        ("Bearer =x", "token68"),
        ("Basic abc=, realm=x", "unexpected character after the auth-scheme 'realm'"),
        ("Bearer=x", "unexpected character after the auth-scheme"),
        ("Basic abc==def", "after a token68"),
        ("Basic abc def", "after a token68"),
        ("Bearer @", "token68"),
        ("Bearer\x00", "unexpected character"),
        ('Bearer realm="a\nb"', "control character"),
        ('Bearer realm="a\\\x01"', "control character"),
        ("Bearer; realm=x", "unexpected character"),
        ("Bearer realm=x\r\n", "expected ','"),
        ("\u00e9", "expected an auth-scheme"),
    ],
)
def test_malformed_headers_raise_discovery_error(header: str, problem: str) -> None:
    with pytest.raises(DiscoveryError, match="malformed WWW-Authenticate header") as info:
        parse_www_authenticate(header)
    assert problem in str(info.value)


def test_malformed_in_second_header_value() -> None:
    with pytest.raises(DiscoveryError, match="unterminated"):
        parse_www_authenticate(["Bearer", 'Basic realm="x'])


def test_quote_does_not_continue_into_next_header_value() -> None:
    # Each header line is parsed on its own: a quote cannot swallow the next line.
    with pytest.raises(DiscoveryError):
        parse_www_authenticate(['Bearer realm="a', 'b"'])


def test_huge_header_refused() -> None:
    big = "Bearer realm=" + "a" * MAX_CHALLENGE_HEADER_BYTES
    with pytest.raises(DiscoveryError, match="larger than"):
        parse_www_authenticate(big)


def test_huge_total_across_values_refused() -> None:
    part = 'Bearer realm="' + "a" * 1000 + '"'
    count = MAX_CHALLENGE_HEADER_BYTES // len(part) + 1
    with pytest.raises(DiscoveryError, match="larger than"):
        parse_www_authenticate([part] * count)


def test_size_is_counted_in_utf8_bytes() -> None:
    value = 'Bearer realm="' + "\u00e9" * (MAX_CHALLENGE_HEADER_BYTES // 2) + '"'
    assert len(value) < MAX_CHALLENGE_HEADER_BYTES
    with pytest.raises(DiscoveryError, match="larger than"):
        parse_www_authenticate(value)


def test_just_under_the_limit_is_parsed() -> None:
    value = "Bearer realm=" + "a" * (MAX_CHALLENGE_HEADER_BYTES - len("Bearer realm="))
    assert one(value).param("realm") == "a" * (MAX_CHALLENGE_HEADER_BYTES - 13)


@pytest.mark.parametrize(
    "header",
    [
        "," * MAX_CHALLENGE_HEADER_BYTES,
        "a=" * (MAX_CHALLENGE_HEADER_BYTES // 2),
        "Bearer " + "a=b, " * (MAX_CHALLENGE_HEADER_BYTES // 6),
        "Bearer " + 'a="\\' * (MAX_CHALLENGE_HEADER_BYTES // 5),
        "a " + "=" * (MAX_CHALLENGE_HEADER_BYTES - 3),
        "B " + "x" * (MAX_CHALLENGE_HEADER_BYTES - 3),
        "A, " * (MAX_CHALLENGE_HEADER_BYTES // 3),
        "Bearer a=b, " + "c " * (MAX_CHALLENGE_HEADER_BYTES // 3),
    ],
)
@pytest.mark.timeout(10)
def test_adversarial_headers_are_parsed_in_linear_time(header: str) -> None:
    """The parser reads each character a bounded number of times (about 4 for the worst of
    these): a parser that backtracks or rescans reads these ~16 KiB values millions of times."""
    text = CountingText(header)
    with contextlib.suppress(DiscoveryError):
        parse_www_authenticate(text)
    assert 0 < text.reads <= LINEAR_READS * len(header) + 64


@pytest.mark.parametrize("bad", [None, 42, b"Bearer", [b"Bearer"], ["Bearer", None]])
def test_wrong_input_types_raise_discovery_error(bad: Any) -> None:
    with pytest.raises(DiscoveryError):
        parse_www_authenticate(bad)


def test_find_challenge_order_and_schemes() -> None:
    challenges = parse_www_authenticate('Basic realm="a", DPoP algs="ES256", Bearer scope="s"')
    assert find_challenge(challenges) is challenges[1]
    assert find_challenge(challenges, ("BEARER",)) is challenges[2]
    assert find_challenge(challenges, ["basic"]) is challenges[0]
    assert find_challenge(challenges, ("negotiate",)) is None
    assert find_challenge([]) is None
    assert find_challenge(challenges, "bearer") is challenges[2]  # one scheme, not its letters


def test_challenges_are_hashable_values() -> None:
    a = Challenge("Bearer", {"Scope": "x"})
    b = Challenge("Bearer", {"scope": "x"})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, Challenge("Bearer")}) == 2


def test_challenge_errors_are_mcp_auth_errors() -> None:
    with pytest.raises(MCPAuthError):
        parse_www_authenticate('Bearer realm="')


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/mcp", "https://example.com/mcp"),
        ("HTTPS://Example.COM/mcp", "https://example.com/mcp"),
        ("https://example.com:443/mcp", "https://example.com/mcp"),
        ("http://example.com:80/mcp", "http://example.com/mcp"),
        ("http://example.com:443/mcp", "http://example.com:443/mcp"),
        ("https://example.com:80/mcp", "https://example.com:80/mcp"),
        ("https://example.com:8443/mcp", "https://example.com:8443/mcp"),
        ("https://example.com:0443/mcp", "https://example.com/mcp"),
        ("https://example.com:/mcp", "https://example.com/mcp"),
        ("https://example.com/MCP", "https://example.com/MCP"),
        ("https://example.com/mcp/", "https://example.com/mcp/"),
        ("https://example.com", "https://example.com"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/mcp#frag", "https://example.com/mcp"),
        ("https://example.com/mcp?a=1&b=2", "https://example.com/mcp?a=1&b=2"),
        ("https://example.com/mcp?a=1#x", "https://example.com/mcp?a=1"),
        ("https://example.com?x", "https://example.com?x"),
        ("https://example.com/a/../b/./c", "https://example.com/a/../b/./c"),
        ("https://example.com/%7Euser", "https://example.com/%7Euser"),
        ("https://example.com//double", "https://example.com//double"),
        ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/mcp"),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("https://[2001:DB8::1]/x", "https://[2001:db8::1]/x"),
        ("https://EXAMPLE.com./mcp", "https://example.com./mcp"),
        ("https://b\u00fccher.example/mcp", "https://xn--bcher-kva.example/mcp"),
    ],
)
def test_canonical_resource_url(url: str, expected: str) -> None:
    assert canonical_resource_url(url) == expected
    assert canonical_resource_url(expected) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com/mcp",
        "/mcp",
        "//example.com/mcp",
        "ftp://example.com/mcp",
        "ws://example.com/mcp",
        "file:///etc/passwd",
        "https://",
        "https:///mcp",
        "https:/example.com",
        "https://user:pass@example.com/mcp",
        "https://user@example.com/mcp",
        "https://example.com:abc/mcp",
        "https://example.com:99999/mcp",
        "https://example.com:0/mcp",
        "https://example.com:-1/mcp",
        "https://[::1/mcp",
        "https://[zzzz::1]/mcp",
        "https://[fe80::1%25eth0]/mcp",
        "https://[::1]x/mcp",
        "https://exa mple.com/mcp",
        " https://example.com/mcp",
        "https://example.com/mcp ",
        "https://example.com/m\ncp",
        "https://example.com/m\tcp",
        "https://example.com/\x00",
        "https://exa<mple.com/",
        "https://example.com\\@evil.com/",
        "https://a:b:c/",
        "mailto:someone@example.com",
    ],
)
def test_canonical_resource_url_refuses(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        canonical_resource_url(url)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(url) in message  # named, and quoted so no control character reaches a log
    assert "\n" not in message


def test_canonical_resource_url_error_names_the_url() -> None:
    with pytest.raises(ConfigurationError, match="ftp://host/x"):
        canonical_resource_url("ftp://host/x")


def test_canonical_resource_url_refuses_non_string() -> None:
    with pytest.raises(ConfigurationError):
        canonical_resource_url(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.com:443/mcp?x#y", "https://example.com"),
        ("http://localhost:8080/a", "http://localhost:8080"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://example.com:8443", "https://example.com:8443"),
    ],
)
def test_origin(url: str, expected: str) -> None:
    assert origin(url) == expected


def test_origin_refuses() -> None:
    with pytest.raises(ConfigurationError):
        origin("not a url")


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "LocalHost",
        "127.0.0.1",
        "127.1.2.3",
        "127.255.255.255",
        "::1",
        "[::1]",
        "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1",
    ],
)
def test_is_loopback_host(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost.example.com",
        "mylocalhost",
        "128.0.0.1",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "[::2]",
        "[::1",
        "127.0.0.1.nip.io",
        "",
        "[]",
    ],
)
def test_is_not_loopback_host(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    "url",
    [
        "https://as.example.com/authorize",
        "https://AS.example.com",
        "http://localhost:9000/token",
        "http://127.0.0.1/token",
        "http://[::1]:8080/token",
        "HTTP://LOCALHOST/x",
    ],
)
def test_require_secure_url_accepts(url: str) -> None:
    assert require_secure_url(url, what="token endpoint") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://as.example.com/token",
        "http://10.0.0.1/token",
        "http://localhost.evil.com/token",
        "http://127.0.0.1.nip.io/token",
    ],
)
def test_require_secure_url_refuses_plain_http(url: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        require_secure_url(url, what="token endpoint")
    message = str(info.value)
    assert message.startswith("token endpoint")
    assert f"must use https: {url}" in message


@pytest.mark.parametrize(
    "url", ["", "/token", "ftp://as.example.com/", "https://u:p@as.example.com/", "javascript:x"]
)
def test_require_secure_url_refuses_garbage(url: str) -> None:
    with pytest.raises(DiscoveryError, match="token endpoint"):
        require_secure_url(url, what="token endpoint")


@pytest.mark.parametrize(
    ("resource", "server", "covered"),
    [
        ("https://x.com/mcp", "https://x.com/mcp", True),
        ("https://x.com/mcp", "https://x.com/mcp/", True),
        ("https://x.com/mcp", "https://x.com/mcp/sub", True),
        ("https://x.com/mcp/", "https://x.com/mcp/sub", True),
        ("https://x.com/mcp/", "https://x.com/mcp", True),
        ("https://x.com/mcp", "https://x.com/mcpx", False),
        ("https://x.com/mcp", "https://x.com/mc", False),
        ("https://x.com/mcp", "https://x.com/", False),
        ("https://x.com/mcp/sub", "https://x.com/mcp", False),
        ("https://x.com", "https://x.com/mcp", True),
        ("https://x.com/", "https://x.com/mcp", True),
        ("https://x.com/", "https://x.com", True),
        ("https://x.com", "https://x.com", True),
        ("HTTPS://X.COM:443/mcp", "https://x.com/mcp", True),
        ("https://x.com/mcp#f", "https://x.com/mcp?q=1", True),
        ("https://x.com/MCP", "https://x.com/mcp", False),
        ("https://x.com/mcp", "http://x.com/mcp", False),
        ("https://x.com/mcp", "https://x.com:8443/mcp", False),
        ("https://y.com/mcp", "https://x.com/mcp", False),
        ("https://x.com.evil/mcp", "https://x.com/mcp", False),
        ("https://evil.com/", "https://x.com/mcp", False),
        ("", "https://x.com/mcp", False),
        ("/mcp", "https://x.com/mcp", False),
        ("https://x.com/mcp", "garbage", False),
        ("https://u@x.com/mcp", "https://x.com/mcp", False),
    ],
)
def test_resource_covers(resource: str, server: str, covered: bool) -> None:
    assert resource_covers(resource, server) is covered


def test_resource_covers_never_raises_on_wrong_types() -> None:
    assert resource_covers(None, "https://x.com") is False  # type: ignore[arg-type]
    assert resource_covers("https://x.com", 5) is False  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Discovery URL orders (MCP authorization specification, RFC 9728 section 3, RFC 8414 section 3)
# --------------------------------------------------------------------------------------------


def test_prm_urls_with_path() -> None:
    assert protected_resource_metadata_urls("https://example.com/public/mcp") == [
        "https://example.com/.well-known/oauth-protected-resource/public/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_header_url_first() -> None:
    header = "https://example.com/custom/prm"
    assert protected_resource_metadata_urls("https://example.com/mcp", header) == [
        header,
        "https://example.com/.well-known/oauth-protected-resource/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_header_url_not_repeated() -> None:
    header = "https://example.com/.well-known/oauth-protected-resource/mcp"
    assert protected_resource_metadata_urls("https://example.com/mcp", header) == [
        header,
        "https://example.com/.well-known/oauth-protected-resource",
    ]
    root = "https://example.com/.well-known/oauth-protected-resource"
    assert protected_resource_metadata_urls("https://example.com", root) == [root]


@pytest.mark.parametrize("server", ["https://example.com", "https://example.com/"])
def test_prm_urls_without_path(server: str) -> None:
    assert protected_resource_metadata_urls(server) == [
        "https://example.com/.well-known/oauth-protected-resource"
    ]


def test_prm_urls_canonical_origin_and_query_dropped() -> None:
    assert protected_resource_metadata_urls("HTTPS://Example.com:443/mcp?x=1#f") == [
        "https://example.com/.well-known/oauth-protected-resource/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_keep_port_and_trailing_slash() -> None:
    assert protected_resource_metadata_urls("http://127.0.0.1:3000/mcp/") == [
        "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp/",
        "http://127.0.0.1:3000/.well-known/oauth-protected-resource",
    ]


def test_prm_urls_refuse_bad_server_url() -> None:
    with pytest.raises(ConfigurationError):
        protected_resource_metadata_urls("example.com/mcp")


def test_as_urls_with_path() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com/tenant1") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]


def test_as_urls_trailing_slash_stripped() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com/a/b/") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/a/b",
        "https://auth.example.com/.well-known/openid-configuration/a/b",
        "https://auth.example.com/a/b/.well-known/openid-configuration",
    ]


@pytest.mark.parametrize("issuer", ["https://auth.example.com", "https://auth.example.com/"])
def test_as_urls_without_path(issuer: str) -> None:
    assert authorization_server_metadata_urls(issuer) == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_as_urls_loopback_port() -> None:
    assert authorization_server_metadata_urls("http://localhost:9000") == [
        "http://localhost:9000/.well-known/oauth-authorization-server",
        "http://localhost:9000/.well-known/openid-configuration",
    ]


def test_as_urls_refuse_bad_issuer() -> None:
    with pytest.raises(ConfigurationError):
        authorization_server_metadata_urls("auth.example.com")


def test_fallback_server_metadata() -> None:
    assert fallback_server_metadata("https://MCP.example.com:443/v1/mcp?x=1") == {
        "issuer": "https://mcp.example.com",
        "authorization_endpoint": "https://mcp.example.com/authorize",
        "token_endpoint": "https://mcp.example.com/token",
        "registration_endpoint": "https://mcp.example.com/register",
        "code_challenge_methods_supported": ["S256"],
    }
    assert fallback_server_metadata("http://127.0.0.1:8000/mcp")["token_endpoint"] == (
        "http://127.0.0.1:8000/token"
    )


# --------------------------------------------------------------------------------------------
# JSON documents
# --------------------------------------------------------------------------------------------

PRM_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
AS_URL = "https://auth.example.com/.well-known/oauth-authorization-server"
ISSUER = "https://auth.example.com"


def test_parse_json_document() -> None:
    body = json.dumps({"resource": "https://x", "n": [1, 2]}).encode()
    assert parse_json_document(body, what="metadata", url=PRM_URL) == {
        "resource": "https://x",
        "n": [1, 2],
    }


def test_parse_json_document_accepts_bom() -> None:
    assert parse_json_document(b'\xef\xbb\xbf{"a": 1}', what="m", url=PRM_URL) == {"a": 1}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not valid JSON"),
        (b"<html>", "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": "\xc3"}', "not UTF-8"),
        (b"[]", "must be a JSON object, got an array"),
        (b'"str"', "must be a JSON object, got a string"),
        (b"null", "must be a JSON object, got null"),
        (b"1", "must be a JSON object, got a number"),
        (b"true", "must be a JSON object, got a boolean"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"a": ' + b"9" * 10_000 + b"}", "not valid JSON"),
    ],
)
def test_parse_json_document_refuses(body: bytes, problem: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_json_document(body, what="protected resource metadata", url=PRM_URL)
    message = str(info.value)
    assert problem in message
    assert "protected resource metadata" in message
    assert PRM_URL in message


def test_parse_json_document_size_limit() -> None:
    body = b'{"a": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'
    with pytest.raises(DiscoveryError, match="larger than"):
        parse_json_document(body, what="metadata", url=PRM_URL)
    with pytest.raises(DiscoveryError, match="larger than 10 bytes"):
        parse_json_document(b'{"abcdef": 1}', what="metadata", url=PRM_URL, limit=10)
    assert parse_json_document(b'{"a": 1}', what="metadata", url=PRM_URL, limit=8) == {"a": 1}


def prm(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resource": "https://mcp.example.com/mcp",
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["mcp:read", "mcp:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Example MCP",
        "dpop_signing_alg_values_supported": ["ES256"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not ...}


def test_validate_resource_metadata_full() -> None:
    doc = prm(unknown_field="dropped", resource_documentation="https://docs")
    out = validate_resource_metadata(doc, url=PRM_URL)
    assert out == prm()
    assert "unknown_field" not in out


def test_validate_resource_metadata_minimal() -> None:
    assert validate_resource_metadata({"resource": "https://x/mcp"}, url=PRM_URL) == {
        "resource": "https://x/mcp"
    }


def test_validate_resource_metadata_null_is_absent() -> None:
    out = validate_resource_metadata(prm(scopes_supported=None), url=PRM_URL)
    assert "scopes_supported" not in out


def test_validate_resource_metadata_returns_copies() -> None:
    doc = prm()
    out = validate_resource_metadata(doc, url=PRM_URL)
    out["scopes_supported"].append("x")
    assert doc["scopes_supported"] == ["mcp:read", "mcp:write"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"resource": ...}, "resource"),
        ({"resource": None}, "resource"),
        ({"resource": ""}, "resource"),
        ({"resource": 5}, "resource"),
        ({"resource": ["https://x"]}, "resource"),
        ({"authorization_servers": "https://auth.example.com"}, "authorization_servers"),
        ({"authorization_servers": [1]}, "authorization_servers"),
        ({"authorization_servers": {"a": "b"}}, "authorization_servers"),
        ({"scopes_supported": "a b"}, "scopes_supported"),
        ({"scopes_supported": ["a", None]}, "scopes_supported"),
        ({"bearer_methods_supported": [True]}, "bearer_methods_supported"),
        ({"resource_name": 1}, "resource_name"),
        ({"dpop_signing_alg_values_supported": "ES256"}, "dpop_signing_alg_values_supported"),
    ],
)
def test_validate_resource_metadata_wrong_types(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        validate_resource_metadata(prm(**overrides), url=PRM_URL)
    assert repr(field) in str(info.value)
    assert PRM_URL in str(info.value)


@pytest.mark.parametrize(
    "server", ["http://auth.example.com", "ftp://auth.example.com", "", "auth.example.com"]
)
def test_validate_resource_metadata_insecure_authorization_server(server: str) -> None:
    with pytest.raises(DiscoveryError, match="authorization server"):
        validate_resource_metadata(prm(authorization_servers=[server]), url=PRM_URL)


def test_validate_resource_metadata_loopback_http_authorization_server() -> None:
    """Accepted for a resource on loopback (as the caller's rules say); a remote resource may
    not name a server on this machine."""
    doc = prm(authorization_servers=["http://localhost:9000", "http://127.0.0.1:9001/t"])
    out = validate_resource_metadata(doc, url=PRM_URL, rules=UrlRules(loopback_allowed=True))
    assert out["authorization_servers"] == ["http://localhost:9000", "http://127.0.0.1:9001/t"]
    with pytest.raises(DiscoveryError, match="points at this machine"):
        validate_resource_metadata(doc, url=PRM_URL)


@pytest.mark.parametrize("doc", [[], "x", None, 5])
def test_validate_resource_metadata_not_an_object(doc: Any) -> None:
    with pytest.raises(DiscoveryError, match="must be a JSON object"):
        validate_resource_metadata(doc, url=PRM_URL)


def asm(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "registration_endpoint": f"{ISSUER}/register",
        "revocation_endpoint": f"{ISSUER}/revoke",
        "introspection_endpoint": f"{ISSUER}/introspect",
        "device_authorization_endpoint": f"{ISSUER}/device",
        "jwks_uri": f"{ISSUER}/jwks",
        "scopes_supported": ["openid", "mcp"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": False,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not ...}


def test_validate_server_metadata_full() -> None:
    out = validate_server_metadata(
        asm(userinfo_endpoint="https://x", extra=1), issuer=ISSUER, url=AS_URL
    )
    assert out == asm()


def test_validate_server_metadata_minimal() -> None:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/a",
        "token_endpoint": f"{ISSUER}/t",
    }
    assert validate_server_metadata(doc, issuer=ISSUER, url=AS_URL) == doc


def test_validate_server_metadata_null_optional_is_absent() -> None:
    out = validate_server_metadata(
        asm(registration_endpoint=None, scopes_supported=None),
        issuer=ISSUER,
        url=AS_URL,
    )
    assert "registration_endpoint" not in out
    assert "scopes_supported" not in out


@pytest.mark.parametrize(
    "found",
    [
        "https://auth.example.com/",
        "https://AUTH.example.com",
        "https://auth.example.com:443",
        "https://evil.example.com",
        "http://auth.example.com",
    ],
)
def test_validate_server_metadata_issuer_mismatch(found: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        validate_server_metadata(asm(issuer=found), issuer=ISSUER, url=AS_URL)
    message = str(info.value)
    assert repr(found) in message
    assert repr(ISSUER) in message
    assert AS_URL in message


def test_validate_server_metadata_issuer_with_trailing_slash_expected() -> None:
    with pytest.raises(DiscoveryError, match="exact"):
        validate_server_metadata(asm(), issuer=ISSUER + "/", url=AS_URL)
    doc = asm(issuer=ISSUER + "/")
    assert validate_server_metadata(doc, issuer=ISSUER + "/", url=AS_URL)["issuer"] == (
        ISSUER + "/"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"issuer": ...}, "issuer"),
        ({"issuer": 1}, "issuer"),
        ({"authorization_endpoint": ...}, "authorization_endpoint"),
        ({"token_endpoint": ...}, "token_endpoint"),
        ({"token_endpoint": None}, "token_endpoint"),
        ({"token_endpoint": ""}, "token_endpoint"),
        ({"authorization_endpoint": ["https://x"]}, "authorization_endpoint"),
        ({"registration_endpoint": 5}, "registration_endpoint"),
        ({"jwks_uri": {}}, "jwks_uri"),
        ({"scopes_supported": "openid"}, "scopes_supported"),
        ({"response_types_supported": [1]}, "response_types_supported"),
        ({"grant_types_supported": "code"}, "grant_types_supported"),
        ({"code_challenge_methods_supported": "S256"}, "code_challenge_methods_supported"),
        (
            {"token_endpoint_auth_methods_supported": [None]},
            "token_endpoint_auth_methods_supported",
        ),
        ({"dpop_signing_alg_values_supported": 1}, "dpop_signing_alg_values_supported"),
        (
            {"client_id_metadata_document_supported": "true"},
            "client_id_metadata_document_supported",
        ),
        (
            {"authorization_response_iss_parameter_supported": 1},
            "authorization_response_iss_parameter_supported",
        ),
    ],
)
def test_validate_server_metadata_wrong_types(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        validate_server_metadata(asm(**overrides), issuer=ISSUER, url=AS_URL)
    assert repr(field) in str(info.value)
    assert AS_URL in str(info.value)


@pytest.mark.parametrize(
    "field",
    [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
    ],
)
def test_validate_server_metadata_refuses_http_endpoint(field: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        validate_server_metadata(
            asm(**{field: "http://auth.example.com/x"}), issuer=ISSUER, url=AS_URL
        )
    message = str(info.value)
    assert field in message
    assert "must use https: http://auth.example.com/x" in message


def test_validate_server_metadata_refuses_relative_endpoint() -> None:
    with pytest.raises(DiscoveryError, match="token_endpoint"):
        validate_server_metadata(asm(token_endpoint="/token"), issuer=ISSUER, url=AS_URL)


def test_validate_server_metadata_loopback_http_accepted() -> None:
    issuer = "http://127.0.0.1:9000"
    doc = {
        "issuer": issuer,
        "authorization_endpoint": "http://127.0.0.1:9000/authorize",
        "token_endpoint": "http://localhost:9000/token",
        "registration_endpoint": "http://[::1]:9000/register",
    }
    local = UrlRules(loopback_allowed=True)  # the rules of a resource on loopback
    assert validate_server_metadata(doc, issuer=issuer, url=f"{issuer}/x", rules=local) == doc
    with pytest.raises(DiscoveryError, match="points at this machine"):
        validate_server_metadata(doc, issuer=issuer, url=f"{issuer}/.well-known/x")


@pytest.mark.parametrize("doc", [[], "x", None, 5, True])
def test_validate_server_metadata_not_an_object(doc: Any) -> None:
    with pytest.raises(DiscoveryError, match="must be a JSON object"):
        validate_server_metadata(doc, issuer=ISSUER, url=AS_URL)


def test_fallback_metadata_passes_validation() -> None:
    doc = fallback_server_metadata("https://mcp.example.com/mcp")
    assert validate_server_metadata(doc, issuer="https://mcp.example.com", url="x") == doc
