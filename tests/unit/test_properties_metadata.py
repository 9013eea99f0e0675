"""Property tests (hypothesis) for mcp_client_auth.metadata.

Hostile input must end in a typed error, never in a crash: whatever a server sends, the parser,
the URL rules and the validators raise nothing but DiscoveryError (ConfigurationError for URLs
given by the user), and what they accept they accept consistently.
"""

from __future__ import annotations

import contextlib
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_client_auth.errors import ConfigurationError, DiscoveryError
from mcp_client_auth.metadata import (
    Challenge,
    authorization_server_metadata_urls,
    canonical_resource_url,
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

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHAR = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
TOKEN68_CHAR = "-._~+/" + string.ascii_letters + string.digits

# --------------------------------------------------------------------------------------------
# WWW-Authenticate
# --------------------------------------------------------------------------------------------

# Text made mostly of the characters that matter to the grammar, so the parser's branches are
# reached far more often than by uniformly random text.
grammar_text = st.text(alphabet=' \t,="\\aBc=/+!\x00\r\n\u00e9', max_size=80)
header_values = st.one_of(st.text(max_size=200), grammar_text)


@SETTINGS
@given(st.one_of(header_values, st.lists(header_values, max_size=5)))
def test_parser_raises_only_discovery_error(headers: str | list[str]) -> None:
    try:
        challenges = parse_www_authenticate(headers)
    except DiscoveryError:
        return
    for challenge in challenges:
        assert challenge.scheme
        assert set(challenge.scheme) <= set(TCHAR)
        assert all(name == name.lower() for name in challenge.params)
        assert not (challenge.params and challenge.token68)


tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
token68s = st.builds(
    lambda body, pad: body + "=" * pad,
    st.text(alphabet=TOKEN68_CHAR, min_size=1, max_size=20),
    st.integers(0, 2),
)
quoted_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t"),
    max_size=20,
)
ows = st.sampled_from(["", " ", "  ", "\t", " \t "])
separators = st.sampled_from([",", ", ", " ,", " , ", ",,", ", ,", ",\t,  "])


@st.composite
def rendered_value(draw: st.DrawFn) -> tuple[str, str]:
    """(wire form, value): a token where possible and chosen, else a quoted-string."""
    value = draw(st.one_of(tokens, quoted_values))
    if value and set(value) <= set(TCHAR) and draw(st.booleans()):
        return value, value
    escape_all = draw(st.booleans())
    body = "".join(
        "\\" + char if char in '"\\' or (escape_all and char != "\t") else char for char in value
    )
    return f'"{body}"', value


@st.composite
def rendered_challenge(draw: st.DrawFn) -> tuple[str, Challenge]:
    scheme = draw(tokens)
    kind = draw(st.sampled_from(["bare", "token68", "params"]))
    if kind == "bare":
        return scheme, Challenge(scheme)
    if kind == "token68":
        token68 = draw(token68s)
        return f"{scheme} {draw(ows)}{token68}{draw(ows)}", Challenge(scheme, token68=token68)
    count = draw(st.integers(1, 4))
    parts: list[str] = []
    params: dict[str, str] = {}
    for _ in range(count):
        name = draw(tokens)
        wire, value = draw(rendered_value())
        parts.append(f"{name}{draw(ows)}={draw(ows)}{wire}")
        params.setdefault(name.lower(), value)  # a repeated name keeps its first value
    rendered = parts[0]
    for part in parts[1:]:
        rendered += draw(separators) + draw(ows) + part
    # Empty list elements may come before the first auth-param too (RFC 9110 section 5.6.1).
    leading = draw(st.sampled_from(["", "", ", ", ",, "]))
    return f"{scheme} {draw(ows)}{leading}{rendered}", Challenge(scheme, params)


@st.composite
def rendered_headers(draw: st.DrawFn) -> tuple[list[str], list[Challenge]]:
    items = draw(st.lists(rendered_challenge(), min_size=1, max_size=5))
    header_values: list[str] = []
    current = draw(st.sampled_from(["", ", ", " "]))
    for index, (wire, _challenge) in enumerate(items):
        current += wire
        last = index == len(items) - 1
        if last or draw(st.booleans()):
            header_values.append(current + draw(st.sampled_from(["", ",", " ", " , "])))
            current = draw(st.sampled_from(["", ", ", " "]))
        else:
            current += draw(separators) + draw(ows)
    return header_values, [challenge for _wire, challenge in items]


@SETTINGS
@given(rendered_headers())
def test_rendered_challenges_round_trip(case: tuple[list[str], list[Challenge]]) -> None:
    header_values, expected = case
    assert parse_www_authenticate(header_values) == expected
    assert parse_www_authenticate(", ".join(header_values)) == expected


@SETTINGS
@given(rendered_headers(), st.integers(min_value=0), st.sampled_from(['"', "\\", "\x00", "\n"]))
def test_damaged_challenges_raise_only_discovery_error(
    case: tuple[list[str], list[Challenge]], where: int, junk: str
) -> None:
    text = ", ".join(case[0])
    where %= len(text) + 1
    with contextlib.suppress(DiscoveryError):
        parse_www_authenticate(text[:where] + junk + text[where:])


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------

hosts = st.one_of(
    st.sampled_from(
        ["example.com", "EXAMPLE.com", "localhost", "127.0.0.1", "[::1]", "[2001:DB8::1]", "a.b"]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "-.", min_size=1, max_size=15),
    st.text(max_size=6),
)
url_like = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTPS", "Http", "ftp", ""]),
    hosts,
    st.one_of(
        st.just(""),
        st.integers(-1, 70000).map(lambda p: f":{p}"),
        st.text(max_size=4).map(":".__add__),
    ),
    st.one_of(st.just(""), st.text(max_size=15).map("/".__add__)),
    st.one_of(st.just(""), st.text(max_size=8).map("?".__add__)),
    st.one_of(st.just(""), st.text(max_size=8).map("#".__add__)),
)
any_url = st.one_of(st.text(max_size=60), url_like)


@SETTINGS
@given(any_url)
def test_canonical_resource_url_raises_only_configuration_error_and_is_idempotent(
    url: str,
) -> None:
    try:
        canonical = canonical_resource_url(url)
    except ConfigurationError:
        return
    assert canonical_resource_url(canonical) == canonical
    assert canonical.startswith(("http://", "https://"))
    assert "#" not in canonical
    assert origin(canonical) == origin(url)
    assert canonical.startswith(origin(url))
    assert resource_covers(canonical, url)
    assert resource_covers(url, canonical)


@SETTINGS
@given(any_url, any_url)
def test_url_rules_never_raise_untyped_errors(url: str, other: str) -> None:
    assert isinstance(resource_covers(url, other), bool)
    assert isinstance(is_loopback_host(url), bool)
    with contextlib.suppress(DiscoveryError):
        assert require_secure_url(url, what="endpoint") == url
    try:
        urls = protected_resource_metadata_urls(url, other or None)
        assert len(urls) == len(set(urls))
    except ConfigurationError:
        pass
    try:
        urls = authorization_server_metadata_urls(url)
        assert len(urls) == len(set(urls))
        assert all(u.startswith(origin(url) + "/") for u in urls)
    except ConfigurationError:
        pass


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.sampled_from(["https://auth.example.com", "http://localhost:1/x", "http://evil.com"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

PRM_FIELDS = [
    "resource",
    "authorization_servers",
    "scopes_supported",
    "bearer_methods_supported",
    "resource_name",
    "dpop_signing_alg_values_supported",
]
AS_FIELDS = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "device_authorization_endpoint",
    "jwks_uri",
    "scopes_supported",
    "response_types_supported",
    "grant_types_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "dpop_signing_alg_values_supported",
    "client_id_metadata_document_supported",
    "authorization_response_iss_parameter_supported",
]
ISSUER = "https://auth.example.com"

# Values for a known field: mostly of a plausible type, sometimes anything at all.
field_values = st.one_of(
    json_values,
    st.sampled_from([ISSUER, f"{ISSUER}/token", "http://127.0.0.1:9/a", "http://x.com/a"]),
    st.lists(st.sampled_from([ISSUER, "S256", "code", "http://x.com"]), max_size=3),
    st.booleans(),
)


VALID_PRM: dict[str, Any] = {
    "resource": "https://mcp.example.com/mcp",
    "authorization_servers": [ISSUER, "http://127.0.0.1:9000"],
    "scopes_supported": ["mcp"],
    "bearer_methods_supported": ["header"],
    "resource_name": "Example",
    "dpop_signing_alg_values_supported": ["ES256"],
}
VALID_AS: dict[str, Any] = {
    "issuer": ISSUER,
    **{name: f"{ISSUER}/{name}" for name in AS_FIELDS if name.endswith(("_endpoint", "_uri"))},
    **{name: ["S256"] for name in AS_FIELDS if name.endswith("s_supported")},
    "client_id_metadata_document_supported": True,
    "authorization_response_iss_parameter_supported": False,
}


def documents(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Anything JSON-like, or a valid document with a few fields replaced, dropped or added.

    The mutated documents reach the validators' success paths as well as every failure.
    """
    fields = sorted(valid)
    mutated = st.builds(
        lambda replaced, dropped, extra: {
            **{k: v for k, v in valid.items() if k not in dropped},
            **replaced,
            **extra,
        },
        st.dictionaries(st.sampled_from(fields), field_values, max_size=3),
        st.sets(st.sampled_from(fields), max_size=3),
        st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    )
    return st.one_of(json_values, mutated)


@SETTINGS
@given(documents(VALID_PRM))
def test_validate_resource_metadata_raises_only_discovery_error(doc: Any) -> None:
    try:
        out = validate_resource_metadata(doc, url="https://mcp.example.com/.well-known/x")
    except DiscoveryError:
        return
    assert set(out) <= set(PRM_FIELDS)
    assert isinstance(out["resource"], str)
    assert out["resource"]
    for server in out.get("authorization_servers", []):
        assert require_secure_url(server, what="server") == server


@SETTINGS
@given(documents(VALID_AS))
def test_validate_server_metadata_raises_only_discovery_error(doc: Any) -> None:
    try:
        out = validate_server_metadata(doc, issuer=ISSUER, url=f"{ISSUER}/.well-known/x")
    except DiscoveryError:
        return
    assert set(out) <= set(AS_FIELDS)
    assert out["issuer"] == ISSUER
    for name, value in out.items():
        if name.endswith(("_endpoint", "_uri")):
            assert require_secure_url(value, what=name) == value
        elif name.endswith("_supported") and not isinstance(value, bool):
            assert all(isinstance(item, str) for item in value)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_parse_json_document_raises_only_discovery_error(body: bytes) -> None:
    try:
        doc = parse_json_document(body, what="metadata", url="https://x/y", limit=150)
    except DiscoveryError:
        return
    assert isinstance(doc, dict)
