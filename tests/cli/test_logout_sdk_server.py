"""``logout`` against the ``mcp`` SDK's own authorization server (and so FastMCP's).

Its revocation endpoint requires a ``client_secret`` field even of a public client (``400
invalid_request: client_secret: Field required``). The provider sends that field empty, once,
after exactly this refusal (RFC 6749 2.3.1: an empty secret may be sent as an empty field), so
the tokens are revoked there: the server's provider is asked to revoke both, and the CLI says
so. Compliant servers are never sent the empty field (the demo server would refuse it: see
``test_status_logout.py``; oidc-provider: ``test_real_as.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.sdk_auth_server import SdkAuthServer, sdk_auth_server

from .conftest import CLI

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk() -> Iterator[SdkAuthServer]:
    with sdk_auth_server() as server:
        yield server


def test_logout_revokes_at_the_mcp_sdks_authorization_server(cli: CLI, sdk: SdkAuthServer) -> None:
    assert cli.login(sdk.url).returncode == 0
    record = cli.record(sdk.url)
    assert record is not None and record.tokens is not None and record.client is not None
    assert record.client.client_secret is None  # a public client
    assert record.tokens.access_token in sdk.provider.access

    run = cli("logout", sdk.url)
    assert run.returncode == 0, run.output
    assert "revoked the refresh token and the access token" in run.stderr
    assert sdk.provider.revoked == ["refresh", "access"]
    assert record.tokens.access_token not in sdk.provider.access
    assert record.tokens.refresh_token not in sdk.provider.refresh


def test_logout_where_the_revocation_endpoint_refuses_says_so(cli: CLI) -> None:
    with sdk_auth_server(refuse_revocation=True) as sdk:
        assert cli.login(sdk.url).returncode == 0
        run = cli("logout", sdk.url)
        assert sdk.provider.revoked == []
    assert run.returncode == 1, run.output  # the tokens still live on the server: say so
    assert run.stdout == ""
    assert "but the server's revocation endpoint refused" in run.stderr
    assert "refresh_token: HTTP 400 (invalid_request): client_secret: Field required" in (
        run.stderr
    )
    assert "Still valid on the server until they expire" in run.stderr
    record = cli.record(sdk.url)
    assert record is not None and record.tokens is None  # forgotten here all the same
