"""The resource-side steps (``resource.py``) as a generator: feed them the resource's answers,
check what they yield. No driver, no client, no store.

What is proved: a valid token in memory is attached with no effect; a 403 that is not
``insufficient_scope`` ends the steps with no effect; a 401 takes the refresh lock (as an
effect) before the flow reads the store or sends anything; the first use reads the store
before it tries the lock.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from mcp_client_auth.effects import AcquireLock, HttpRequest, LoadRecord, ReleaseLock, TryLock
from mcp_client_auth.errors import DiscoveryError
from mcp_client_auth.flow import AuthFlow, FlowSettings
from mcp_client_auth.registration import ClientSettings
from mcp_client_auth.resource import ResourceSide
from mcp_client_auth.tokens import ServerRecord, TokenSet

URL = "https://mcp.example.com/mcp"


def resource_side(tokens: TokenSet | None) -> ResourceSide:
    flow = AuthFlow(FlowSettings(server_url=URL, client=ClientSettings(client_name="test")))
    if tokens is not None:
        flow.record = ServerRecord(URL, issuer="https://as.example.com", tokens=tokens)
    return ResourceSide(flow, URL, time.time)


def answer(request: httpx.Request, status: int, challenge: str = "") -> httpx.Response:
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    return httpx.Response(status, headers=headers, request=request)


def items_until_request(steps: Generator[Any, Any, Any], first: Any = None) -> list[Any]:
    """What ``steps`` yield up to (and with) the caller's request, each effect answered
    ``None`` (no stored record, nothing held)."""
    items = [steps.send(first)]
    while not isinstance(items[-1], httpx.Request):
        items.append(steps.send(True if isinstance(items[-1], TryLock) else None))
    return items


def test_a_refused_403_ends_the_steps_without_an_effect() -> None:
    tokens = TokenSet("at-1", expires_at=time.time() + 3600)
    side = resource_side(tokens)
    request = httpx.Request("POST", URL)
    side.authorize(request, tokens)
    steps = side.request_steps(request, tokens, answer(request, 403, 'Bearer error="forbidden"'))
    try:
        steps.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover
        raise AssertionError("the steps went on after a plain 403")


def test_a_401_takes_the_lock_before_the_flow_reads_the_store_or_the_network() -> None:
    tokens = TokenSet("at-1", expires_at=time.time() + 3600)
    side = resource_side(tokens)
    request = httpx.Request("POST", URL)
    side.authorize(request, tokens)
    steps = side.request_steps(request, tokens, answer(request, 401, "Bearer"))
    assert steps.send(None) == AcquireLock()
    assert steps.send(None) == LoadRecord()
    discovery = steps.send(None)  # nothing stored: discovery, still under the lock
    assert isinstance(discovery, HttpRequest) and "oauth-protected-resource" in discovery.url
    # the driver throws what sending it raised; the steps let it out (the performer, closed
    # by the driver, lets go of the lock)
    with pytest.raises(DiscoveryError, match="unreachable"):
        steps.throw(DiscoveryError("unreachable"))


def test_no_token_in_memory_reads_the_store_first_without_the_lock() -> None:
    side = resource_side(None)
    request = httpx.Request("POST", URL)
    steps = side.request_steps(request, None, None)
    items = items_until_request(steps)
    assert items[0] == LoadRecord()  # the first read needs no lock
    assert items[1] == TryLock()
    assert ReleaseLock() in items and items[-1] is request
    assert "authorization" not in request.headers  # nothing stored: sent bare, to learn
