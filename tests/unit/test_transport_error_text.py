"""A transport error whose own text is empty still gets a cause in our message.

Found by the interop suite: a server that fails one request with 500 and drops the connection
made the next request on the pooled connection fail with ``httpx.ReadError('')``, and the
registration error read "could not reach http://.../register for the client registration: ."
with nothing after the colon: nothing a person can act on.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mcp_client_auth import DiscoveryError, OAuthClientProvider, TokenStore

from .fake_servers import RESOURCE


def test_a_transport_error_without_text_still_names_its_cause(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadError(""), is_reusable=True)
    provider = OAuthClientProvider(RESOURCE, store=TokenStore.memory(), login=lambda u: u)
    with pytest.raises(DiscoveryError, match="could not reach") as info:
        asyncio.run(provider.aget_token())
    cause = re.sub(r"^.*? for the [^:]*:", "", str(info.value), count=1).strip(" .")
    assert cause, str(info.value)
