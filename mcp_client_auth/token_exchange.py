"""Enterprise-managed authorization (SEP-990): an ID token traded for an ID-JAG at the IdP.

The enterprise identity provider (IdP) signs the user in (OpenID Connect: the application's
business) and gives an ID token. :class:`IdJagExchange` trades it, by an RFC 8693 token exchange
at the IdP's token endpoint, for an Identity Assertion JWT Authorization Grant (ID-JAG) whose
audience is the MCP server's authorization server and whose resource is the MCP server; the
flow then presents the ID-JAG there with the JWT bearer grant (RFC 7523). Use it as the
``assertion`` of :class:`~mcp_client_auth.IdentityAssertion`::

    auth = IdentityAssertion(
        "https://mcp.example.com/mcp",
        client_id="mcp-client", client_secret="...",
        assertion=IdJagExchange(
            "https://idp.example.com/oauth2/token", id_token=get_id_token, client_id="idp-client"
        ),
    )

Sans-IO like the rest of the flow: the exchange is requests the driver sends with the HTTP
library of the request being authorized.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .effects import Effect, GetSubjectToken, HttpRequest, HttpResponse
from .error_answers import answer_text, read_error
from .errors import ConfigurationError, TokenError
from .server_json import parse_json
from .url_rules import require_secure_setting

__all__ = [
    "ID_JAG_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "IdJagExchange",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"

SubjectTokenSource = Callable[[], "str | Awaitable[str]"]


@dataclass(frozen=True, repr=False)
class IdJagExchange:
    """RFC 8693 token exchange at the enterprise IdP: ``id_token`` in, an ID-JAG out.

    ``id_token`` is the user's ID token from the IdP, or a callable (sync or async) that returns
    a current one; it is asked for at every exchange, so it can refresh it. ``client_id`` and
    ``client_secret`` are this application's client at the IdP (``client_secret_basic``, or
    ``client_secret_post`` with ``auth_method="client_secret_post"``; without a secret the
    client_id goes in the form). ``token_endpoint`` must be https (or on loopback);
    ``allow_insecure_http`` (or ``MCP_CLIENT_AUTH_INSECURE_HTTP=1``) allows plain http there,
    for development only.
    """

    token_endpoint: str
    id_token: str | SubjectTokenSource
    client_id: str
    client_secret: str | None = None
    auth_method: str = "client_secret_basic"
    subject_token_type: str = ID_TOKEN_TYPE
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        require_secure_setting(
            self.token_endpoint,
            what="the identity provider's token endpoint",
            allow_insecure_http=self.allow_insecure_http,
        )
        if not self.client_id:
            raise ConfigurationError("IdJagExchange needs the client_id registered at the IdP")
        if self.auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError(
                f"IdJagExchange: auth_method {self.auth_method!r} is not supported "
                "(client_secret_basic or client_secret_post)"
            )

    def exchange(
        self, *, audience: str, resource: str, scope: str | None = None
    ) -> Generator[Effect, Any, str]:
        """The steps of one exchange: returns the ID-JAG for ``audience`` and ``resource``."""
        subject: str = yield GetSubjectToken(self.id_token)
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "requested_token_type": ID_JAG_TOKEN_TYPE,
            "subject_token": subject,
            "subject_token_type": self.subject_token_type,
            "audience": audience,
            "resource": resource,
        }
        if scope:
            form["scope"] = scope
        headers: dict[str, str] = {}
        if self.client_secret and self.auth_method == "client_secret_basic":
            user = quote(self.client_id, safe="")
            password = quote(self.client_secret, safe="")
            basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {basic}"
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret
        response: HttpResponse = yield HttpRequest.post_form(
            self.token_endpoint,
            form,
            what="ID-JAG token exchange",
            error=TokenError,
            headers=headers,
        )
        return _id_jag(response)

    def __repr__(self) -> str:
        return f"IdJagExchange({self.token_endpoint!r}, client_id={self.client_id!r})"


def _id_jag(response: HttpResponse) -> str:
    if response.status_code != 200:
        answer = read_error(response)
        raise answer.as_error(
            TokenError,
            f"the identity provider refused the ID-JAG token exchange at {response.url} "
            f"(HTTP {response.status_code}{answer.detail}); the user may need to sign in to it "
            "again",
        )
    document = parse_json(
        response.body, what="token exchange response", url=response.url, error=TokenError
    )
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(f"the token exchange response from {response.url} has no access_token")
    issued = document.get("issued_token_type")
    if issued is not None and issued != ID_JAG_TOKEN_TYPE:
        raise TokenError(
            f"the identity provider at {response.url} issued a "
            f"{answer_text(response, issued)!r}, not an ID-JAG ({ID_JAG_TOKEN_TYPE})"
        )
    return token
