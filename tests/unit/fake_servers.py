"""An in-process protected resource and authorization server for unit tests.

One handler function serves both ``httpx.MockTransport`` and ``httpx2.MockTransport``: it
reads only what the two libraries' requests share, and answers with the library's own
``Response`` class. It records every request so tests can assert what was sent where.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"


@dataclass
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class FakeServers:
    """A protected resource at RESOURCE and its authorization server at ISSUER."""

    access_ttl: int = 3600
    scopes_supported: list[str] = field(default_factory=lambda: ["read", "write"])
    required_scope: str | None = None  # a scope the resource demands (403 otherwise)
    issue_refresh: bool = True
    dcr: bool = True
    iss_supported: bool = True
    seen: list[Seen] = field(default_factory=list)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_refresh: bool = False
    revocation: bool = True
    revoked: list[str] = field(default_factory=list)

    # -- helpers for tests -----------------------------------------------------------------

    def count(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    def approve(self, authorization_url: str) -> str:
        """The login: what a browser would be redirected to after the user approves."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        client = self.clients.get(query["client_id"])
        assert client is not None, "unknown client"
        assert query["redirect_uri"] in client["redirect_uris"]
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        params = {"code": code, "state": query["state"]}
        if self.iss_supported:
            params["iss"] = ISSUER
        return f"{query['redirect_uri']}?{urlencode(params)}"

    # -- the handler ------------------------------------------------------------------------

    def handler(self, request: Any) -> Any:
        body = request.read()
        seen = Seen(request.method, str(request.url), dict(request.headers), body)
        self.seen.append(seen)
        response_class = type(request).__module__.split(".")[0]
        module = __import__(response_class)

        def reply(status: int, doc: Any = None, headers: dict[str, str] | None = None) -> Any:
            content = json.dumps(doc).encode() if doc is not None else b""
            hdrs = {"content-type": "application/json", **(headers or {})}
            return module.Response(status, headers=hdrs, content=content)

        url = str(request.url)
        path = urlsplit(url).path
        if url.startswith(RESOURCE):
            return self._resource(seen, reply)
        if url == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp":
            return reply(
                200,
                {
                    "resource": RESOURCE,
                    "authorization_servers": [ISSUER],
                    "scopes_supported": self.scopes_supported,
                },
            )
        if url == f"{ISSUER}/.well-known/oauth-authorization-server":
            doc: dict[str, Any] = {
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": self.scopes_supported,
                "authorization_response_iss_parameter_supported": self.iss_supported,
            }
            if self.dcr:
                doc["registration_endpoint"] = f"{ISSUER}/register"
            if self.revocation:
                doc["revocation_endpoint"] = f"{ISSUER}/revoke"
            return reply(200, doc)
        if url == f"{ISSUER}/register" and self.dcr:
            info = json.loads(body)
            client_id = "client-" + secrets.token_hex(4)
            self.clients[client_id] = info
            return reply(201, {"client_id": client_id, **info})
        if url == f"{ISSUER}/revoke" and self.revocation:
            token = seen.form.get("token", "")
            self.revoked.append(seen.form.get("token_type_hint", ""))
            self.access.pop(token, None)
            self.refresh.pop(token, None)
            return reply(200)
        if url == f"{ISSUER}/token":
            return self._token(seen.form, reply)
        if path.startswith("/.well-known/"):
            return reply(404, {"error": "not_found"})
        return reply(404)

    def _resource(self, seen: Seen, reply: Any) -> Any:
        challenge = (
            'Bearer resource_metadata="https://mcp.example.com/.well-known/'
            'oauth-protected-resource/mcp"'
        )
        auth = seen.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        grant = self.access.get(token or "")
        if grant is None or grant["exp"] < time.time():
            return reply(401, {"error": "unauthorized"}, {"www-authenticate": challenge})
        if grant["resource"] != RESOURCE:
            return reply(401, {"error": "wrong audience"}, {"www-authenticate": challenge})
        if self.required_scope and self.required_scope not in grant["scope"].split():
            return reply(
                403,
                {"error": "insufficient_scope"},
                {
                    "www-authenticate": f'Bearer error="insufficient_scope", '
                    f'scope="{self.required_scope}", resource_metadata="https://mcp.example.com/'
                    '.well-known/oauth-protected-resource/mcp"'
                },
            )
        return reply(200, {"ok": True, "scope": grant["scope"]})

    def _issue(self, client_id: str, scope: str, resource: str) -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(12)
        self.access[token] = {
            "exp": time.time() + self.access_ttl,
            "scope": scope,
            "resource": resource,
            "client_id": client_id,
        }
        doc = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": scope,
        }
        if self.issue_refresh:
            rt = "rt-" + secrets.token_urlsafe(12)
            self.refresh[rt] = {"client_id": client_id, "scope": scope, "resource": resource}
            doc["refresh_token"] = rt
        return doc

    def _token(self, form: dict[str, str], reply: Any) -> Any:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            query = self.codes.pop(form.get("code", ""), None)
            if query is None:
                return reply(400, {"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != query["code_challenge"]:
                return reply(400, {"error": "invalid_grant", "error_description": "PKCE"})
            if form.get("resource") != query.get("resource"):
                return reply(400, {"error": "invalid_target"})
            if form.get("client_id") != query["client_id"]:
                return reply(401, {"error": "invalid_client"})
            return reply(
                200, self._issue(query["client_id"], query.get("scope", ""), form["resource"])
            )
        if grant == "refresh_token":
            old = self.refresh.pop(form.get("refresh_token", ""), None)
            if old is None or self.refuse_refresh:
                return reply(400, {"error": "invalid_grant"})
            if form.get("resource") != old["resource"]:
                return reply(400, {"error": "invalid_target"})
            return reply(200, self._issue(old["client_id"], old["scope"], old["resource"]))
        return reply(400, {"error": "unsupported_grant_type"})
