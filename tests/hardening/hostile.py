"""A protected resource and its authorization server that can be made broken or hostile.

One :class:`Hostile` holds the whole server side: it answers like a correct server by default
(RFC 9728 metadata, RFC 8414 metadata, dynamic registration, PKCE-checked code exchange,
rotating refresh tokens, revocation), and any endpoint can be replaced by a *hook* that returns
a hostile :class:`Reply` (or ``None`` to fall back to the correct answer). It records every
request, and every secret it issues or receives (access and refresh tokens, authorization
codes, client secrets, PKCE verifiers), so the leak tests can look for each of them.

It serves two ways from the same :meth:`Hostile.respond`:

* :meth:`Hostile.handler` for ``httpx.MockTransport`` / ``httpx2.MockTransport`` and
  pytest-httpx's ``add_callback`` (answers with the request's own library's ``Response``);
* :meth:`Hostile.asgi`, an ASGI app, served for real by ``tests.servers.in_thread`` (uvicorn
  on 127.0.0.1, optionally with TLS), for the loopback, multi-process and TLS tests.

Nothing here binds anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.servers.seen import Seen

RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"
EVIL = "https://evil.example"

JSON = [("content-type", "application/json")]


@dataclass
class Reply:
    """What a server answers: status, headers (repeatable, in order), body (or a stream).

    ``pause`` makes the real server (:meth:`Hostile.asgi`) trickle the body: it waits that many
    seconds before each chunk (each byte, for a ``bytes`` body) and stops once the client has
    gone; :meth:`Hostile.handler` ignores it.
    """

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    pause: float = 0.0

    @classmethod
    def json(cls, doc: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        return cls(status, json.dumps(doc).encode(), [*JSON, *headers])

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
        return cls(status, body, [("content-type", content_type)])


Hook = Callable[[Seen], "Reply | None"]


class Unreachable(Exception):
    """Raised by a hook: the client gets a transport error (``connect`` or ``timeout``)."""

    def __init__(self, kind: str = "connect") -> None:
        super().__init__(kind)
        self.kind = kind


def unreachable(kind: str = "connect") -> Hook:
    def hook(seen: Seen) -> Reply:
        raise Unreachable(kind)

    return hook


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Hostile:
    """A protected resource at ``resource`` and its authorization server at ``issuer``.

    ``hooks`` maps an endpoint name (``resource``, ``prm``, ``asm``, ``register``, ``token``,
    ``revoke``, ``other``: any other origin, such as :data:`EVIL`) to a function of the
    request that returns a hostile :class:`Reply`, or ``None`` for the correct answer.
    """

    resource: str = RESOURCE
    issuer: str = ISSUER
    access_ttl: int = 3600
    # the expires_in sent, when not access_ttl: 0 makes the client see every token as expired
    # (the leeway is capped at half a token's lifetime) while the resource still accepts it
    reported_ttl: int | None = None
    scopes_supported: list[str] = field(default_factory=lambda: ["read", "write"])
    required_scope: str | None = None  # the resource answers 403 insufficient_scope without it
    iss_supported: bool = True
    dcr: bool = True
    confidential: bool = False  # registration issues a client secret
    issue_refresh: bool = True
    prm_extra: dict[str, Any] = field(default_factory=dict)  # merged into the PRM document
    asm_extra: dict[str, Any] = field(default_factory=dict)  # merged into the AS metadata
    challenges: list[str] | None = None  # WWW-Authenticate values of a 401; None: the usual one
    hooks: dict[str, Hook] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)  # every secret issued or received
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    logins: int = 0  # authorization URLs approved
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- URLs ---------------------------------------------------------------------------------

    @property
    def prm_url(self) -> str:
        return f"{_origin(self.resource)}/.well-known/oauth-protected-resource" + (
            urlsplit(self.resource).path.rstrip("/")
        )

    @property
    def asm_url(self) -> str:
        return f"{self.issuer}/.well-known/oauth-authorization-server"

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    # -- what tests read ------------------------------------------------------------------------

    def count(self, name: str) -> int:
        """How many requests reached endpoint ``name`` (see :meth:`route`)."""
        return sum(1 for s in self.seen if self.route(s) == name)

    def requests_to(self, origin: str) -> list[Seen]:
        return [s for s in self.seen if s.origin == origin]

    def on_grant(self, grant: str, reply: Callable[[Seen], Reply | None]) -> None:
        """Answer token requests of ``grant`` with ``reply`` (the others as usual)."""
        self.hooks["token"] = lambda seen: (
            reply(seen) if seen.form.get("grant_type") == grant else None
        )

    def token_requests(self, grant: str | None = None) -> list[Seen]:
        found = [s for s in self.seen if self.route(s) == "token"]
        return [s for s in found if grant is None or s.form.get("grant_type") == grant]

    # -- the login: what the user's browser brings back ----------------------------------------

    def approve(self, authorization_url: str, **changes: str | None) -> str:
        """The redirect a browser gets after the user approves; ``changes`` edit its query
        (a value of ``None`` drops that parameter)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self.logins += 1
            self.codes[code] = query
            self.secrets.add(code)
        params: dict[str, str | None] = {"code": code, "state": query.get("state")}
        if self.iss_supported:
            params["iss"] = self.issuer
        params.update(changes)
        kept = {k: v for k, v in params.items() if v is not None}
        return f"{query['redirect_uri']}?{urlencode(kept)}"

    # -- serving -------------------------------------------------------------------------------

    def route(self, seen: Seen) -> str:
        url = seen.url.split("?", 1)[0]
        res_path = urlsplit(self.resource).path
        if _origin(url) == _origin(self.resource):
            path = urlsplit(url).path
            if path == res_path or path.startswith(res_path.rstrip("/") + "/"):
                return "resource"
            if url == self.prm_url:
                return "prm"
        if url == self.asm_url:
            return "asm"
        for name in ("register", "token", "revoke", "authorize"):
            if url == self.endpoint(name):
                return name
        if _origin(url) in (_origin(self.resource), self.issuer):
            return "unknown"
        return "other"

    def respond(self, seen: Seen) -> Reply:
        name = self.route(seen)
        with self._lock:
            self.seen.append(seen)
            if name in ("token", "revoke", "other"):  # what the client sends there is secret
                for key in ("code_verifier", "client_secret", "refresh_token", "code", "token"):
                    if seen.form.get(key):
                        self.secrets.add(seen.form[key])
        hook = self.hooks.get(name)
        if hook is not None:
            reply = hook(seen)
            if reply is not None:
                return reply
        return self.correct(name, seen)

    def correct(self, name: str, seen: Seen) -> Reply:
        """What a correct server answers at endpoint ``name`` (a hook may fall back on it)."""
        answer = getattr(self, f"_{name}", None)  # each endpoint's answer is a method of ours
        if answer is None:
            return Reply.json({"error": "not_found"}, 404)
        reply = answer(seen)
        assert isinstance(reply, Reply)
        return reply

    def handler(self, request: Any) -> Any:
        """For ``httpx.MockTransport``, ``httpx2.MockTransport`` and pytest-httpx callbacks."""
        body = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        module = sys.modules[type(request).__module__.split(".")[0]]
        try:
            reply = self.respond(Seen(request.method, str(request.url), headers, body))
        except Unreachable as exc:
            if exc.kind == "timeout":
                raise module.ReadTimeout("timed out", request=request) from None
            raise module.ConnectError("[Errno 111] Connection refused", request=request) from None
        content = reply.body if isinstance(reply.body, bytes) else iter(reply.body)
        headers = [(k, v.encode("utf-8")) for k, v in reply.headers]  # any text a server sends
        return module.Response(reply.status, headers=headers, content=content)

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{scope['scheme']}://{headers.get('host', '')}{scope['path']}"
        if query:
            url += "?" + query
        reply = self.respond(Seen(scope["method"], url, headers, body))
        raw = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in reply.headers]
        if reply.pause:
            await _trickle(reply, raw, receive, send)
            return
        data = reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)
        raw.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": data})

    # -- the correct answers -------------------------------------------------------------------

    def challenge(self, **extra: str) -> str:
        params = {"resource_metadata": self.prm_url, **extra}
        return "Bearer " + ", ".join(f'{k}="{v}"' for k, v in params.items())

    def _resource(self, seen: Seen) -> Reply:
        auth = seen.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        grant = self.access.get(token)
        if grant is None or grant["exp"] < time.time() or grant["resource"] != self.resource:
            values = self.challenges if self.challenges is not None else [self.challenge()]
            return Reply.json(
                {"error": "unauthorized"}, 401, [("www-authenticate", v) for v in values]
            )
        if self.required_scope and self.required_scope not in grant["scope"].split():
            value = self.challenge(error="insufficient_scope", scope=self.required_scope)
            return Reply.json({"error": "insufficient_scope"}, 403, [("www-authenticate", value)])
        return Reply.json({"ok": True, "scope": grant["scope"]})

    def _prm(self, seen: Seen) -> Reply:
        doc = {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes_supported,
            **self.prm_extra,
        }
        return Reply.json(doc)

    def _asm(self, seen: Seen) -> Reply:
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "revocation_endpoint": self.endpoint("revoke"),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.scopes_supported,
            "authorization_response_iss_parameter_supported": self.iss_supported,
        }
        if self.dcr:
            doc["registration_endpoint"] = self.endpoint("register")
        doc.update(self.asm_extra)
        return Reply.json(doc)

    def _register(self, seen: Seen) -> Reply:
        if not self.dcr:
            return Reply.json({"error": "not_found"}, 404)
        info = json.loads(seen.body)
        client_id = "client-" + secrets.token_hex(4)
        answer = {"client_id": client_id, **info}
        if self.confidential:
            secret = "cs-" + secrets.token_urlsafe(16)
            answer["client_secret"] = secret
            answer["token_endpoint_auth_method"] = "client_secret_basic"
            with self._lock:
                self.secrets.add(secret)
        with self._lock:
            self.clients[client_id] = answer
        return Reply.json(answer, 201)

    def _client_of(self, seen: Seen) -> tuple[str | None, bool]:
        """The client that authenticated this token request, and whether it did so properly."""
        auth = seen.headers.get("authorization", "")
        form = seen.form
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            user, password = unquote(user), unquote(password)
            client = self.clients.get(user)
            return user, bool(client and client.get("client_secret") == password)
        client_id = form.get("client_id")
        client = self.clients.get(client_id or "")
        if client and client.get("client_secret"):
            return client_id, client["client_secret"] == form.get("client_secret")
        return client_id, client is not None

    def issue(self, client_id: str, scope: str, resource: str) -> dict[str, Any]:
        """A token response for a new grant (the tokens are recorded as secrets)."""
        token = "at-" + secrets.token_urlsafe(16)
        doc: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_ttl if self.reported_ttl is None else self.reported_ttl,
            "scope": scope,
        }
        with self._lock:
            self.secrets.add(token)
            self.access[token] = {
                "exp": time.time() + self.access_ttl,
                "scope": scope,
                "resource": resource,
                "client_id": client_id,
            }
            if self.issue_refresh:
                refresh = "rt-" + secrets.token_urlsafe(16)
                self.secrets.add(refresh)
                self.refresh[refresh] = {
                    "client_id": client_id,
                    "scope": scope,
                    "resource": resource,
                }
                doc["refresh_token"] = refresh
        return doc

    def _token(self, seen: Seen) -> Reply:
        form = seen.form
        client_id, authenticated = self._client_of(seen)
        if not authenticated:
            return Reply.json({"error": "invalid_client"}, 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                query = self.codes.pop(form.get("code", ""), None)
            if query is None:
                return Reply.json({"error": "invalid_grant"}, 400)
            if _s256(form.get("code_verifier", "")) != query.get("code_challenge"):
                return Reply.json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
            if form.get("resource") != query.get("resource") or client_id != query["client_id"]:
                return Reply.json({"error": "invalid_grant"}, 400)
            return Reply.json(self.issue(client_id or "", query.get("scope", ""), form["resource"]))
        if grant == "refresh_token":
            with self._lock:
                old = self.refresh.pop(form.get("refresh_token", ""), None)
            if old is None or old["client_id"] != client_id:
                return Reply.json({"error": "invalid_grant"}, 400)
            return Reply.json(self.issue(old["client_id"], old["scope"], old["resource"]))
        if grant == "client_credentials" and client_id in self.clients:
            return Reply.json(
                self.issue(client_id or "", form.get("scope", ""), form.get("resource", ""))
            )
        return Reply.json({"error": "unsupported_grant_type"}, 400)

    def _revoke(self, seen: Seen) -> Reply:
        token = seen.form.get("token", "")
        with self._lock:
            self.access.pop(token, None)
            self.refresh.pop(token, None)
        return Reply(200)


async def _trickle(reply: Reply, raw: list[tuple[bytes, bytes]], receive: Any, send: Any) -> None:
    """Send ``reply`` chunked, ``reply.pause`` seconds before each chunk, until the client goes."""
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    body = reply.body
    pieces = (body[i : i + 1] for i in range(len(body))) if isinstance(body, bytes) else body
    for piece in pieces:
        if await _gone(receive, reply.pause):
            return
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _gone(receive: Any, seconds: float) -> bool:
    """Wait ``seconds``; whether the client hung up meanwhile (the request body is read, so
    the only message left to receive is the disconnect)."""
    try:
        message = await asyncio.wait_for(receive(), seconds)
    except asyncio.TimeoutError:
        return False
    return bool(message.get("type") == "http.disconnect")


# -- real servers on 127.0.0.1 ------------------------------------------------------------------


def chunks(size: int, count: int, consumed: list[int]) -> Iterator[bytes]:
    """``count`` chunks of ``size`` bytes, counting in ``consumed`` how many were read."""
    piece = b" " * size
    for _ in range(count):
        consumed.append(1)
        yield piece
