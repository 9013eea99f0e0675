"""Token response validation: header-safe tokens, huge numbers, and the leeway cap."""

from __future__ import annotations

import pytest

from mcp_client_auth.tokens import MAX_LIFETIME, TokenSet, token_set_from_response

NOW = 1_000_000.0


def parse(**fields: object) -> TokenSet:
    answer = {"access_token": "at-1", "token_type": "Bearer", **fields}
    return token_set_from_response(answer, now=NOW, requested_scope=None)


@pytest.mark.parametrize("field", ["access_token", "refresh_token", "token_type"])
@pytest.mark.parametrize("bad", ["x\r\ny", "x\x00", "x y", "x\t", "caf\u00e9", "x\x7f"])
def test_token_fields_must_be_visible_ascii(field: str, bad: str) -> None:
    secret = "s3cr3t-" + bad
    with pytest.raises(ValueError, match=field) as caught:
        parse(**{field: secret})
    assert secret not in str(caught.value)


def test_stored_token_with_crlf_is_refused() -> None:
    with pytest.raises(ValueError, match="access_token"):
        TokenSet.from_dict({"access_token": "at\r\nX: y"})


@pytest.mark.parametrize(
    ("value", "lifetime"),
    [(5, 5.0), (2.5, 2.5), (" 7 ", 7.0), (0, 0.0), (-0.0, 0.0), (1e300, MAX_LIFETIME)],
)
def test_expires_in_is_a_finite_number_capped_at_the_longest_lifetime(
    value: object, lifetime: float
) -> None:
    assert parse(expires_in=value).expires_at == NOW + lifetime


@pytest.mark.parametrize(
    "value",
    ["\u00b2", True, "9" * 500, 10**400, "", {}, float("nan"), float("inf"), -1, "-1", "1e3"],
)
def test_expires_in_that_is_no_usable_number_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        parse(expires_in=value)


def test_short_lived_token_is_used_for_half_its_lifetime() -> None:
    tokens = parse(expires_in=30)
    assert tokens.issued_at == NOW
    assert tokens.is_valid(NOW + 14)  # leeway 60 s capped at 15 s
    assert not tokens.is_valid(NOW + 16)


def test_long_lived_token_keeps_the_full_leeway() -> None:
    tokens = parse(expires_in=3600)
    assert tokens.is_valid(NOW + 3600 - 61)
    assert not tokens.is_valid(NOW + 3600 - 59)


def test_stored_record_without_issued_at_reads_as_before() -> None:
    old = {"access_token": "at-1", "token_type": "Bearer", "expires_at": NOW + 30}
    tokens = TokenSet.from_dict(old)
    assert tokens.issued_at is None
    assert not tokens.is_valid(NOW)  # full leeway, as in earlier versions
    again = TokenSet.from_dict(parse(expires_in=30).to_dict())
    assert again.issued_at == NOW and again.is_valid(NOW + 10)
