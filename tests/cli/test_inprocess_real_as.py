"""The commands in-process against the real authorization server (oidc-provider, ``tests/realas``).

What is proved: with a strict, certified server, ``login`` stores a login that ``status``
shows; ``token`` refreshes an expired access token (the server rotates the refresh token and
the old one is spent); ``logout`` revokes both tokens at the server (checked by RFC 7662
introspection) and forgets them here, after which ``token`` fails with the one-line hint.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from tests.conftest import follow_to_redirect_uri

from .inprocess import InProcess
from .test_real_as import introspect

if TYPE_CHECKING:
    from tests.conftest import RealStack

pytestmark = pytest.mark.integration


def test_login_token_status_logout(run_cli: InProcess, start_realas) -> None:  # type: ignore[no-untyped-def]
    realas: RealStack = start_realas(AT_FORMAT="opaque", RS_VALIDATION="introspect")
    url = realas.resource
    login = run_cli.login(url, browser=follow_to_redirect_uri)
    assert (login.code, login.stdout) == (0, ""), login.stderr
    first = run_cli.record(url)
    assert first is not None and first.tokens is not None and first.tokens.refresh_token

    status = run_cli("status", url)
    assert (status.code, status.stderr) == (0, "")
    assert f"  issuer          {realas.issuer}\n" in status.stdout

    stale = replace(first.tokens, expires_at=time.time() - 10)
    run_cli.put(replace(first, tokens=stale))
    token = run_cli("token", url)
    assert (token.code, token.stderr) == (0, ""), token.stderr
    second = run_cli.record(url)
    assert second is not None and second.tokens is not None and second.tokens.refresh_token
    assert token.stdout == second.tokens.access_token + "\n"
    assert second.tokens.refresh_token != first.tokens.refresh_token  # rotated
    assert not introspect(realas, first.tokens.refresh_token)  # and the old one spent

    logout = run_cli("logout", url)
    assert (logout.code, logout.stdout) == (0, "")
    assert "revoked the refresh token and the access token" in logout.stderr
    assert not introspect(realas, second.tokens.refresh_token)
    assert not introspect(realas, second.tokens.access_token)
    after = run_cli("token", url)
    assert (after.code, after.stdout) == (1, "")
    assert after.error.startswith(f"error: not logged in to {url}; run `mcp-client-auth login")
    for secret in (first.tokens.refresh_token, second.tokens.access_token):
        for ran in (login, status, logout, after):
            assert secret not in ran.output
