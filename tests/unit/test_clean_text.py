"""Server text in messages: control characters removed, echoed secrets redacted, bounded."""

from mcp_client_auth.metadata import clean_text


def test_control_characters_and_secrets_are_removed() -> None:
    text = clean_text("bad\r\nINFO forged \x1b[2J rt-SECRET-1 here", secrets=["rt-SECRET-1"])
    assert "\n" not in text and "\x1b" not in text and "rt-SECRET-1" not in text
    assert "…" in text


def test_length_is_capped() -> None:
    assert len(clean_text("x" * 1000, 100)) == 100
