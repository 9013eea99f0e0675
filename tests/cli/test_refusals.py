"""Which failed refreshes make ``token`` say "log in again" (only a refusal a retry cannot
change), and which keep the library's "the tokens are kept; try again later"."""

from __future__ import annotations

import pytest

from mcp_client_auth import TokenError
from mcp_client_auth.cli.token import refused as is_refusal


@pytest.mark.parametrize(
    ("status", "error", "refused"),
    [
        (400, "invalid_grant", True),
        (401, "invalid_client", True),
        (400, "unauthorized_client", True),
        (400, "invalid_scope", True),
        (403, "the_servers_own_code", True),
        (429, "slow_down", False),  # busy: later will do
        (408, "timeout", False),
        (400, None, False),  # no OAuth answer at all (a proxy's page): not a refusal
        (503, "temporarily_unavailable", False),
        (None, None, False),  # never reached the server
    ],
)
def test_refused(status: int | None, error: str | None, refused: bool) -> None:
    assert (
        is_refusal(TokenError("the token refresh failed", error=error, status_code=status))
        is refused
    )
