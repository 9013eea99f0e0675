"""The HTTP headers the proxy adds: the user's ``--header`` values, and the MCP headers each
protocol revision asks for on a message.

- ``MCP-Protocol-Version``: from 2025-06-18 on, every request after ``initialize`` carries the
  negotiated version. In the stateless revision (2026-07-28) there is no handshake: each request
  names its version in ``params._meta``, and the header must repeat it.
- ``Mcp-Method`` and ``Mcp-Name`` (2026-07-28): the method, and for the methods that name a
  tool, prompt or resource, that name, mirrored from the body so that gateways can route
  without reading it. A value that would not survive as a header travels base64-wrapped, as
  the specification describes.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError

PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
NAME_PARAMS: Mapping[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}
STATELESS_VERSIONS = frozenset({"2026-07-28"})

_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_BASE64_WRAPPED = re.compile(r"=\?base64\?.*\?=")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# set by the proxy itself: a --header may not replace them
_RESERVED = frozenset(
    {
        "authorization",
        "content-type",
        "content-length",
        "accept",
        "host",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "dpop",
    }
)


def declared_version(message: Any) -> str | None:
    """The protocol version a stateless-revision request names in ``params._meta``."""
    if not isinstance(message, dict):
        return None
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META) if isinstance(meta, dict) else None
    return version if isinstance(version, str) and _HEADER_SAFE.fullmatch(version) else None


def header_value(text: str) -> str:
    """``text`` as it may travel in a header: verbatim when it is plain printable ASCII,
    else base64-wrapped (``=?base64?...?=``)."""
    if (
        _HEADER_SAFE.fullmatch(text)
        and text == text.strip()
        and not _BASE64_WRAPPED.fullmatch(text)
    ):
        return text
    return f"=?base64?{base64.b64encode(text.encode()).decode('ascii')}?="


def message_headers(message: Any, negotiated: str | None) -> dict[str, str]:
    """The MCP headers for one POSTed message (or batch), given the negotiated version."""
    if isinstance(message, list) or not isinstance(message, dict):
        return {"mcp-protocol-version": negotiated} if negotiated else {}
    version = declared_version(message) or negotiated
    if message.get("method") == "initialize":
        return {}
    headers: dict[str, str] = {}
    if version:
        headers["mcp-protocol-version"] = version
    if version in STATELESS_VERSIONS and isinstance(message.get("method"), str):
        method: str = message["method"]
        headers["mcp-method"] = header_value(method)
        key = NAME_PARAMS.get(method)
        params = message.get("params")
        name = params.get(key) if key and isinstance(params, dict) else None
        if isinstance(name, str):
            headers["mcp-name"] = header_value(name)
    return headers


def parse_header_option(text: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``NAME:VALUE`` from ``--header``, with ``$VAR`` and ``${VAR}`` in the value expanded
    from the environment (host configurations keep secrets in ``env``, not in ``args``)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise ConfigurationError(
            f"--header takes NAME:VALUE (a header name, a colon, the value), not {text!r}"
        )
    if name.lower() in _RESERVED:
        raise ConfigurationError(
            f"--header cannot set {name}: the proxy sets it itself (the access token comes from "
            "the login, not from a header)"
        )
    expanded = expand_variables(value.strip(), environ)
    if not _HEADER_SAFE.fullmatch(expanded):
        raise ConfigurationError(
            f"the value of --header {name} holds characters a header cannot carry "
            "(line breaks or other control characters, or non-ASCII text)"
        )
    return name, expanded


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand_variables(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``$VAR`` and ``${VAR}`` replaced from the environment; an unset one is an error."""
    variables = os.environ if environ is None else environ

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise ConfigurationError(f"the environment variable {name} is not set")
        return variables[name]

    return _VARIABLE.sub(one, value)
