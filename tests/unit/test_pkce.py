"""Tests for mcp_client_auth.pkce: RFC 7636 S256 and the state parameter."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from mcp_client_auth.errors import ConfigurationError
from mcp_client_auth.pkce import PKCE, new_state, s256_challenge

UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]+$")
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def test_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    pkce = PKCE.from_verifier(verifier)
    assert pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.method == "S256"


def test_generate_default() -> None:
    pkce = PKCE.generate()
    assert len(pkce.verifier) == 64
    assert UNRESERVED.match(pkce.verifier)
    assert pkce.method == "S256"
    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    assert pkce.challenge == expected
    assert len(pkce.challenge) == 43
    assert BASE64URL.match(pkce.challenge)
    assert "=" not in pkce.challenge


@pytest.mark.parametrize("length", [43, 44, 100, 128])
def test_generate_lengths(length: int) -> None:
    pkce = PKCE.generate(length)
    assert len(pkce.verifier) == length
    assert UNRESERVED.match(pkce.verifier)
    assert pkce.challenge == s256_challenge(pkce.verifier)


@pytest.mark.parametrize("length", [0, 42, 129, -1, 1000, True, 64.0, "64"])
def test_generate_refuses_bad_lengths(length: Any) -> None:
    with pytest.raises(ConfigurationError, match="43 to 128"):
        PKCE.generate(length)


def test_generate_is_random() -> None:
    verifiers = {PKCE.generate().verifier for _ in range(200)}
    assert len(verifiers) == 200


def test_verifier_uses_the_whole_unreserved_alphabet() -> None:
    seen = set("".join(PKCE.generate(128).verifier for _ in range(50)))
    assert seen == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def test_repr_and_str_never_show_the_verifier() -> None:
    pkce = PKCE.generate()
    for text in (repr(pkce), str(pkce), f"{pkce}", repr([pkce]), repr({"p": pkce})):
        assert pkce.verifier not in text
        assert pkce.challenge in text
        assert "S256" in text


def test_frozen() -> None:
    pkce = PKCE.generate()
    with pytest.raises(AttributeError):
        pkce.verifier = "x"  # type: ignore[misc]


def test_construct_checks_consistency() -> None:
    pkce = PKCE.generate()
    assert PKCE(pkce.verifier, pkce.challenge) == pkce
    with pytest.raises(ConfigurationError, match="does not match"):
        PKCE(pkce.verifier, PKCE.generate().challenge)


def test_construct_refuses_plain_method() -> None:
    pkce = PKCE.generate()
    with pytest.raises(ConfigurationError, match="only S256"):
        PKCE(pkce.verifier, pkce.verifier, method="plain")


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + " ", "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "\u00e9", ""],
)
def test_bad_verifier_refused_without_echoing_it(verifier: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PKCE.from_verifier(verifier)
    if verifier:
        assert verifier not in str(info.value)


def test_new_state() -> None:
    states = {new_state() for _ in range(500)}
    assert len(states) == 500
    for state in states:
        assert BASE64URL.match(state)
        assert len(state) * 6 >= 128  # at least 128 bits of entropy, 6 bits per character
