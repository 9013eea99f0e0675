"""The host's requests still waiting for an answer from one relayed message.

The relay's promise, never a hang: whatever happens to the message (answered, refused, the
stream cut, the server gone), every request id it carried gets exactly one answer. The
transport marks ids answered as the server's responses go out; the relay answers the rest with
an error when the transport is done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import jsonrpc


def _key(request_id: Any) -> Any:
    """The id as a key that tells apart what JSON tells apart: 1, 1.0, true and "1" differ."""
    if isinstance(request_id, (str, int, float)) or request_id is None:
        return (type(request_id), request_id)
    return json.dumps(request_id, sort_keys=True)  # an id the spec does not allow, still answered


class Pending:
    def __init__(self, message: jsonrpc.Message) -> None:
        self._ids = {_key(i): i for i in jsonrpc.request_ids(message)}

    def answered(self, message: jsonrpc.Message) -> None:
        for request_id in jsonrpc.response_ids(message):
            self._ids.pop(_key(request_id), None)

    def __bool__(self) -> bool:
        return bool(self._ids)

    def only(self) -> Any:
        """The one id still waiting, when there is exactly one (else None)."""
        return next(iter(self._ids.values())) if len(self._ids) == 1 else None

    def remaining(self) -> Iterable[Any]:
        return list(self._ids.values())

    def clear(self) -> None:
        self._ids.clear()
