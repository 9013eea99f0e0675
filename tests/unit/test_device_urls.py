"""The device login's pages follow the URL rules: a remote server cannot make the user's browser
(``DeviceLogin(open_browser=True)`` opens the page) request a service on this machine."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest

from mcp_client_auth import DiscoveryError
from mcp_client_auth.login import DeviceLogin

from .fake_servers import Seen
from .test_login_fallback import DEVICE_ENDPOINT, DeviceServers, get_token

pytestmark = pytest.mark.timeout(30)

LOCAL_PAGE = "http://127.0.0.1:8080/admin/delete?all=1"


@dataclass
class LoopbackPageServers(DeviceServers):
    """A remote authorization server whose device login page is on the user's machine."""

    field_name: str = "verification_uri_complete"

    def _authorization_server(self, issuer: str, seen: Seen, reply: Any) -> Any:
        response = super()._authorization_server(issuer, seen, reply)
        if seen.url == DEVICE_ENDPOINT and response.status_code == 200:
            return reply(200, {**json.loads(response.content), self.field_name: LOCAL_PAGE})
        return response


@pytest.mark.parametrize("field_name", ["verification_uri", "verification_uri_complete"])
def test_a_device_page_on_this_machine_is_neither_shown_nor_opened(field_name: str) -> None:
    opened: list[str] = []
    output = io.StringIO()

    def opener(url: str) -> bool:
        opened.append(url)
        return True

    login = DeviceLogin(output=output, open_browser=True, opener=opener)
    error = get_token(LoopbackPageServers(field_name=field_name), login)
    assert isinstance(error, DiscoveryError), error
    assert field_name in str(error) and "points at this machine" in str(error)
    assert opened == [] and "127.0.0.1" not in output.getvalue()
