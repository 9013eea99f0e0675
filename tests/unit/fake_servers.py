"""An in-process protected resource and authorization server for unit tests.

One handler function serves both ``httpx.MockTransport`` and ``httpx2.MockTransport``: it
reads only what the two libraries' requests share, and answers with the library's own
``Response`` class. It records every request so tests can assert what was sent where.

Beyond the basic flow it plays, when asked: a second authorization server the resource can
move to (``migrate()``), RFC 9207 ``iss`` variants, a metadata document with the wrong issuer,
DPoP (RFC 9449, checked with PyJWT, not with the library's own code) with authorization-server
and resource-server nonces, the JWT bearer grant, and an enterprise IdP's RFC 8693 token
exchange that issues ID-JAGs.
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

import jwt

from tests.servers.seen import Seen

RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"
ISSUER2 = "https://auth2.example.com"
IDP = "https://idp.example.com"
PRM_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 for an EC key, written out here independently of the library."""
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}
    return b64(
        hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    )


class DPoPRefused(Exception):
    pass


@dataclass
class FakeServers:
    """A protected resource at RESOURCE and its authorization server at ISSUER (or ISSUER2)."""

    access_ttl: int = 3600
    # the expires_in sent, when not access_ttl: 0 makes the client see every token as expired
    # (so it refreshes before each request) while the resource still accepts it
    reported_ttl: int | None = None
    scopes_supported: list[str] = field(default_factory=lambda: ["read", "write"])
    required_scope: str | None = None  # a scope the resource demands (403 otherwise)
    issue_refresh: bool = True
    dcr: bool = True
    iss_supported: bool | None = True  # None: the metadata says nothing about iss
    # the iss of the authorization response: "correct", "missing", "wrong", "normalized"
    iss_mode: str = "correct"
    metadata_issuer: str | None = None  # a wrong issuer in the AS metadata document
    seen: list[Seen] = field(default_factory=list)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_refresh: bool = False
    revocation: bool = True
    revoked: list[str] = field(default_factory=list)
    current_issuer: str = ISSUER  # the authorization server the resource's metadata names
    # more authorization servers the metadata lists after it (their tokens are accepted too)
    extra_authorization_servers: list[str] = field(default_factory=list)
    prm_status: int = 200  # anything else: the protected resource metadata is unavailable
    # DPoP: the AS advertises these algorithms (None: no DPoP); proofs are checked whenever sent
    dpop_algs: list[str] | None = None
    dpop_issue_bearer: bool = False  # an AS that takes proofs but issues bearer tokens
    as_nonce: str | None = None  # the token endpoint demands this DPoP nonce
    rs_nonce: str | None = None  # the resource demands this DPoP nonce
    dpop_required: bool = False  # the resource refuses bearer tokens
    # whether the resource takes DPoP (challenges with the DPoP scheme); None: when the AS
    # offers DPoP. False: a bearer-only resource (the mcp SDK's), which refuses DPoP tokens
    rs_dpop: bool | None = None
    prm_dpop_algs: list[str] | None = None  # dpop_signing_alg_values_supported in the PRM
    # like oidc-provider: a client may ask only for the scopes it was registered with
    registered_scope_limits: bool = False
    registration_management: bool = False  # RFC 7592 read/update at registration_client_uri
    jtis: set[str] = field(default_factory=set)
    proofs: list[dict[str, Any]] = field(default_factory=list)  # every verified proof's claims
    # the JWT bearer grant: the assertion the AS accepts (None: refuse every assertion)
    valid_assertion: str | None = None
    # the enterprise IdP: the ID token it accepts, the ID-JAGs it issued
    id_token: str = "idp-id-token"
    id_jags: dict[str, dict[str, str]] = field(default_factory=dict)
    idp_error: str | None = None
    idp_issued_token_type: str = ID_JAG

    # -- helpers for tests -----------------------------------------------------------------

    def count(self, path: str, origin: str | None = None) -> int:
        return sum(1 for s in self.seen if s.path == path and origin in (None, s.origin))

    def at(self, origin: str) -> list[Seen]:
        return [s for s in self.seen if s.origin == origin]

    def migrate(self) -> None:
        """The resource now names ISSUER2 and refuses tokens from ISSUER."""
        self.current_issuer = ISSUER2

    def approve(self, authorization_url: str) -> str:
        """The login: what a browser would be redirected to after the user approves."""
        parts = urlsplit(authorization_url)
        issuer = f"{parts.scheme}://{parts.netloc}"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        client = self.clients.get(query["client_id"])
        assert client is not None, "unknown client"
        assert client["issuer"] == issuer, "a client id of another authorization server"
        assert query["redirect_uri"] in client["redirect_uris"]
        assert query["code_challenge_method"] == "S256"
        asked = set(query.get("scope", "").split())
        if self.registered_scope_limits and not asked <= set(client.get("scope", "").split()):
            params = {"error": "invalid_scope", "state": query["state"]}
            return f"{query['redirect_uri']}?{urlencode(params)}"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**query, "issuer": issuer}
        params = {"code": code, "state": query["state"]}
        iss = {
            "correct": issuer,
            "missing": None,
            "wrong": "https://evil.example.com",
            "normalized": issuer + "/",
        }[self.iss_mode]
        if iss is not None:
            params["iss"] = iss
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
        if url == PRM_URL and self.prm_status != 200:
            return reply(self.prm_status, {"error": "unavailable"})
        if url == PRM_URL:
            prm: dict[str, Any] = {
                "resource": RESOURCE,
                "authorization_servers": [
                    self.current_issuer,
                    *self.extra_authorization_servers,
                ],
                "scopes_supported": self.scopes_supported,
            }
            if self.prm_dpop_algs is not None:
                prm["dpop_signing_alg_values_supported"] = self.prm_dpop_algs
            return reply(200, prm)
        if url == f"{IDP}/token":
            return self._idp_token(seen, reply)
        for issuer in (ISSUER, ISSUER2):
            if url.startswith(issuer + "/"):
                return self._authorization_server(issuer, seen, reply)
        if path.startswith("/.well-known/"):
            return reply(404, {"error": "not_found"})
        return reply(404)

    def _authorization_server(self, issuer: str, seen: Seen, reply: Any) -> Any:
        url = seen.url
        if url == f"{issuer}/.well-known/oauth-authorization-server":
            doc: dict[str, Any] = {
                "issuer": self.metadata_issuer or issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": self.scopes_supported,
                "grant_types_supported": ["authorization_code", "refresh_token", JWT_BEARER],
            }
            if self.iss_supported is not None:
                doc["authorization_response_iss_parameter_supported"] = self.iss_supported
            if self.dcr:
                doc["registration_endpoint"] = f"{issuer}/register"
            if self.revocation:
                doc["revocation_endpoint"] = f"{issuer}/revoke"
            if self.dpop_algs is not None:
                doc["dpop_signing_alg_values_supported"] = self.dpop_algs
            return reply(200, doc)
        if url == f"{issuer}/register" and self.dcr and seen.method == "POST":
            info = json.loads(seen.body)
            client_id = f"client-{issuer.split('//')[1].split('.')[0]}-" + secrets.token_hex(4)
            self.clients[client_id] = {**info, "issuer": issuer}
            extra: dict[str, str] = {}
            if self.registration_management:
                rat = "rat-" + secrets.token_hex(8)
                self.clients[client_id]["rat"] = rat
                extra = {
                    "registration_client_uri": f"{issuer}/register/{client_id}",
                    "registration_access_token": rat,
                }
            return reply(201, {"client_id": client_id, **info, **extra})
        if url.startswith(f"{issuer}/register/") and self.registration_management:
            client_id = url.rsplit("/", 1)[1]
            client = self.clients.get(client_id)
            if client is None or seen.headers.get("authorization") != f"Bearer {client['rat']}":
                return reply(401, {"error": "invalid_token"})
            info = json.loads(seen.body)
            if seen.method != "PUT" or info.get("client_id") != client_id:
                return reply(400, {"error": "invalid_client_metadata"})
            client.update({k: v for k, v in info.items() if k != "client_id"})
            return reply(200, {**info, "registration_client_uri": url})
        if url == f"{issuer}/revoke" and self.revocation:
            token = seen.form.get("token", "")
            self.revoked.append(seen.form.get("token_type_hint", ""))
            self.access.pop(token, None)
            self.refresh.pop(token, None)
            return reply(200)
        if url == f"{issuer}/token":
            return self._token(issuer, seen, reply)
        return reply(404, {"error": "not_found"})

    # -- DPoP, checked the way a server would ----------------------------------------------

    def check_proof(
        self, proof: str | None, method: str, url: str, access_token: str | None = None
    ) -> dict[str, Any]:
        if not proof:
            raise DPoPRefused("no DPoP proof")
        header = jwt.get_unverified_header(proof)
        if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256":
            raise DPoPRefused(f"bad header {header}")
        jwk = header.get("jwk") or {}
        if "d" in jwk:
            raise DPoPRefused("private key in the proof")
        key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
        claims = jwt.decode(proof, key, algorithms=["ES256"])  # type: ignore[arg-type]
        if claims.get("htm") != method:
            raise DPoPRefused("htm")
        if claims.get("htu") != url.split("?")[0].split("#")[0]:
            raise DPoPRefused(f"htu {claims.get('htu')} != {url}")
        if abs(claims.get("iat", 0) - time.time()) > 60:
            raise DPoPRefused("iat")
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self.jtis:
            raise DPoPRefused("jti missing or replayed")
        self.jtis.add(jti)
        if access_token is not None:
            expected = b64(hashlib.sha256(access_token.encode()).digest())
            if claims.get("ath") != expected:
                raise DPoPRefused("ath")
        elif "ath" in claims:
            raise DPoPRefused("ath on a token request")
        claims["jkt"] = jwk_thumbprint(jwk)
        self.proofs.append(claims)
        return claims

    # -- the resource ----------------------------------------------------------------------

    def _resource(self, seen: Seen, reply: Any) -> Any:
        takes_dpop = (
            self.rs_dpop
            if self.rs_dpop is not None
            else (self.dpop_algs is not None or self.dpop_required)
        )
        scheme = "DPoP" if takes_dpop else "Bearer"
        challenge = f'{scheme} resource_metadata="{PRM_URL}"'
        auth = seen.headers.get("authorization", "")
        kind, _, token = auth.partition(" ")
        grant = self.access.get(token)
        if not takes_dpop and kind != "Bearer":
            grant = None  # an unknown scheme: as if no token came
        if grant is None or grant["exp"] < time.time():
            return reply(401, {"error": "unauthorized"}, {"www-authenticate": challenge})
        if grant["issuer"] not in (self.current_issuer, *self.extra_authorization_servers):
            return reply(401, {"error": "invalid_token"}, {"www-authenticate": challenge})
        if grant["resource"] != RESOURCE:
            return reply(401, {"error": "wrong audience"}, {"www-authenticate": challenge})
        if grant.get("jkt") is not None:
            if kind != "DPoP":
                return reply(
                    401, {"error": "bearer use of a DPoP token"}, {"www-authenticate": challenge}
                )
            try:
                claims = self.check_proof(
                    seen.headers.get("dpop"), seen.method, seen.url, access_token=token
                )
            except (DPoPRefused, jwt.PyJWTError) as exc:
                return reply(
                    401,
                    {"error": "invalid_dpop_proof", "detail": str(exc)},
                    {"www-authenticate": 'DPoP error="invalid_dpop_proof"'},
                )
            if claims["jkt"] != grant["jkt"]:
                return reply(401, {"error": "wrong key"}, {"www-authenticate": challenge})
            if self.rs_nonce is not None and claims.get("nonce") != self.rs_nonce:
                return reply(
                    401,
                    {"error": "use_dpop_nonce"},
                    {
                        "www-authenticate": 'DPoP error="use_dpop_nonce"',
                        "dpop-nonce": self.rs_nonce,
                    },
                )
        elif kind != "Bearer" or self.dpop_required:
            return reply(401, {"error": "unauthorized"}, {"www-authenticate": challenge})
        if self.required_scope and self.required_scope not in grant["scope"].split():
            return reply(
                403,
                {"error": "insufficient_scope"},
                {
                    "www-authenticate": f'{scheme} error="insufficient_scope", '
                    f'scope="{self.required_scope}", resource_metadata="{PRM_URL}"'
                },
            )
        return reply(200, {"ok": True, "scope": grant["scope"], "issuer": grant["issuer"]})

    # -- the token endpoint ----------------------------------------------------------------

    def _issue(
        self, issuer: str, client_id: str, scope: str, resource: str, jkt: str | None
    ) -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(12)
        bound = jkt if not self.dpop_issue_bearer else None
        self.access[token] = {
            "exp": time.time() + self.access_ttl,
            "scope": scope,
            "resource": resource,
            "client_id": client_id,
            "issuer": issuer,
            "jkt": bound,
        }
        doc = {
            "access_token": token,
            "token_type": "DPoP" if bound else "Bearer",
            "expires_in": self.access_ttl if self.reported_ttl is None else self.reported_ttl,
            "scope": scope,
        }
        if self.issue_refresh:
            rt = "rt-" + secrets.token_urlsafe(12)
            self.refresh[rt] = {
                "client_id": client_id,
                "scope": scope,
                "resource": resource,
                "issuer": issuer,
                "jkt": jkt,
            }
            doc["refresh_token"] = rt
        return doc

    def _token(self, issuer: str, seen: Seen, reply: Any) -> Any:
        form = seen.form
        jkt: str | None = None
        extra: dict[str, str] = {}
        if "dpop" in seen.headers:
            try:
                claims = self.check_proof(seen.headers["dpop"], "POST", seen.url)
            except (DPoPRefused, jwt.PyJWTError) as exc:
                return reply(400, {"error": "invalid_dpop_proof", "error_description": str(exc)})
            if self.as_nonce is not None:
                extra = {"dpop-nonce": self.as_nonce}
                if claims.get("nonce") != self.as_nonce:
                    return reply(400, {"error": "use_dpop_nonce"}, extra)
            jkt = claims["jkt"]

        def answer(doc: dict[str, Any]) -> Any:
            return reply(200, doc, extra)

        grant = form.get("grant_type")
        if grant == "authorization_code":
            query = self.codes.pop(form.get("code", ""), None)
            if query is None or query["issuer"] != issuer:
                return reply(400, {"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if b64(digest) != query["code_challenge"]:
                return reply(400, {"error": "invalid_grant", "error_description": "PKCE"})
            if form.get("resource") != query.get("resource"):
                return reply(400, {"error": "invalid_target"})
            if _client_id_of(form, seen.headers) != query["client_id"]:
                return reply(401, {"error": "invalid_client"})
            if query.get("dpop_jkt") is not None and query["dpop_jkt"] != jkt:
                return reply(400, {"error": "invalid_dpop_proof", "error_description": "dpop_jkt"})
            return answer(
                self._issue(
                    issuer, query["client_id"], query.get("scope", ""), form["resource"], jkt
                )
            )
        if grant == "refresh_token":
            old = self.refresh.pop(form.get("refresh_token", ""), None)
            if old is None or self.refuse_refresh or old["issuer"] != issuer:
                return reply(400, {"error": "invalid_grant"})
            if form.get("resource") != old["resource"]:
                return reply(400, {"error": "invalid_target"})
            if old["jkt"] is not None and old["jkt"] != jkt:
                return reply(400, {"error": "invalid_grant", "error_description": "DPoP key"})
            return answer(self._issue(issuer, old["client_id"], old["scope"], old["resource"], jkt))
        if grant == JWT_BEARER:
            assertion = form.get("assertion", "")
            jag = self.id_jags.get(assertion)
            if jag is not None:
                if jag["aud"] != issuer or jag["resource"] != form.get("resource"):
                    return reply(400, {"error": "invalid_grant", "error_description": "aud"})
            elif self.valid_assertion is None or assertion != self.valid_assertion:
                return reply(400, {"error": "invalid_grant"})
            client_id = form.get("client_id") or _basic_user(seen.headers) or "anonymous"
            return answer(
                self._issue(issuer, client_id, form.get("scope", ""), form.get("resource", ""), jkt)
            )
        return reply(400, {"error": "unsupported_grant_type"})

    # -- the enterprise IdP ------------------------------------------------------------------

    def _idp_token(self, seen: Seen, reply: Any) -> Any:
        form = seen.form
        if self.idp_error:
            return reply(400, {"error": self.idp_error})
        if (
            form.get("grant_type") != TOKEN_EXCHANGE
            or form.get("requested_token_type") != ID_JAG
            or form.get("subject_token_type") != ID_TOKEN
            or form.get("subject_token") != self.id_token
            or not form.get("audience")
            or not form.get("resource")
        ):
            return reply(400, {"error": "invalid_request"})
        jag = "id-jag-" + secrets.token_urlsafe(8)
        self.id_jags[jag] = {"aud": form["audience"], "resource": form["resource"]}
        return reply(
            200,
            {
                "access_token": jag,
                "issued_token_type": self.idp_issued_token_type,
                "token_type": "N_A",
                "expires_in": 300,
            },
        )


def _basic_user(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    return base64.b64decode(auth[6:]).decode().split(":")[0]


def _client_id_of(form: dict[str, str], headers: dict[str, str]) -> str | None:
    """The client of a token request: ``client_id`` in the form, or HTTP Basic's user name
    (``client_secret_basic``, RFC 6749 2.3.1: form-urlencoded, then base64)."""
    if "client_id" in form:
        return form["client_id"]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    from urllib.parse import unquote

    user = base64.b64decode(value).decode().partition(":")[0]
    return unquote(user)
