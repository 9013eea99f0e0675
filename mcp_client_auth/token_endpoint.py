"""The token endpoint: one request, authenticated as the client was registered, its answer read.

Every grant ends here. A request carries the client's authentication (a fresh
``private_key_jwt`` assertion each time), a DPoP proof where the record has a key, and is sent
once more when the server asks for a DPoP nonce (RFC 9449 8). The answer becomes a
:class:`~mcp_client_auth.tokens.TokenSet` or a :class:`~mcp_client_auth.errors.TokenError`
that carries the server's ``error`` code, which the grants act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

from .dpop_policy import proof_key
from .effects import Effect, HttpRequest, HttpResponse
from .error_answers import answer_text, read_error
from .errors import TokenError
from .registration import client_auth
from .server_json import parse_json, server_nonce
from .tokens import ClientRegistration, ServerRecord, TokenSet, token_set_from_response
from .urls import origin

if TYPE_CHECKING:
    from .flow_types import FlowSettings

__all__ = ["TokenEndpoint", "parse_token_response"]

logger = logging.getLogger("mcp_client_auth.flow")

AUTHORIZATION_SERVER = "authorization server"  # who gave a DPoP nonce (the flow's nonces)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenEndpoint:
    """Token requests for one flow: its settings, its clock and its DPoP nonces.

    ``nonces`` is shared with the flow, keyed by who gave the nonce and its origin, so an
    authorization server and a resource on one origin keep one each.
    """

    def __init__(
        self,
        settings: FlowSettings,
        clock: Callable[[], float],
        nonces: dict[tuple[str, str], str],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.nonces = nonces

    def authenticate(
        self, client: ClientRegistration, record: ServerRecord
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Form fields and headers that authenticate ``client`` for one request to its
        authorization server: the token request, revocation (RFC 7009 2.1) and device
        authorization (RFC 8628 3.1) alike, each the way the client was registered; for a
        ``private_key_jwt`` client, a client assertion signed for this request alone."""
        form, headers = client_auth(client)
        audience = client.issuer or record.issuer or ""
        return {**form, **self._client_assertion(client, audience)}, headers

    def _client_assertion(self, client: ClientRegistration, issuer: str) -> dict[str, str]:
        """A fresh client assertion (RFC 7523 2.2) where the user gave a private key.

        Every request of a ``private_key_jwt`` client authenticates with one, the refresh and
        the revocation too (without it a server answers ``invalid_client``), and each attempt
        signs anew: a server refuses an assertion whose ``jti`` it has seen, as on a retry with
        a DPoP nonce.
        """
        private_key = self.settings.private_key
        if private_key is None or client.token_endpoint_auth_method != "private_key_jwt":
            return {}
        from .jwt import client_assertion

        assertion = client_assertion(
            client.client_id, issuer, private_key, self.settings.signing_algorithm
        )
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}

    def request(
        self,
        record: ServerRecord,
        client: ClientRegistration,
        form: Mapping[str, str],
        *,
        requested_scope: str | None,
        what: str,
        timeout: Callable[[], float | None] = lambda: None,
    ) -> Generator[Effect, Any, TokenSet]:
        """One token request; with DPoP, a proof, and one retry when the server asks for a
        nonce (RFC 9449 8). ``timeout`` says how long each attempt may take, when less than
        the driver's deadline (a device poll: what is left of the login's timeout)."""
        metadata = record.server_metadata or {}
        endpoint = self.settings.urls.check(metadata["token_endpoint"], what="the token endpoint")
        key = proof_key(self.settings.dpop, record)
        where = (AUTHORIZATION_SERVER, origin(endpoint))
        for attempt in (1, 2):
            auth_form, headers = self.authenticate(client, record)
            if key is not None:
                proof = key.proof("POST", endpoint, nonce=self.nonces.get(where), now=self.clock())
                headers = {**headers, "DPoP": proof}
            sent = {**form, **auth_form}
            response: HttpResponse = yield HttpRequest.post_form(
                endpoint, sent, what=what, error=TokenError, headers=headers, timeout=timeout()
            )
            if key is None:
                break
            nonce = server_nonce(response.headers.get("dpop-nonce"))
            if nonce:
                self.nonces[where] = nonce
            if (
                attempt == 1
                and nonce
                and response.status_code in (400, 401)
                and read_error(response).error == "use_dpop_nonce"
            ):
                logger.debug("the token endpoint %s asked for a DPoP nonce; retrying", endpoint)
                continue
            break
        tokens = parse_token_response(
            response, what=what, requested_scope=requested_scope, now=self.clock()
        )
        if tokens.dpop_bound and key is None:
            raise TokenError(
                f"the {what} at {endpoint} returned a DPoP-bound token although no DPoP proof "
                "was sent; it cannot be used"
            )
        if key is not None and not tokens.dpop_bound and self.settings.dpop:
            raise TokenError(
                f"the {what} at {endpoint} returned a bearer token, but dpop=True requires "
                "DPoP-bound tokens; the authorization server does not support DPoP"
            )
        return tokens


def parse_token_response(
    response: HttpResponse, *, what: str, requested_scope: str | None, now: float
) -> TokenSet:
    """The tokens in a token endpoint's answer, or a :class:`TokenError` that says why not
    (with the server's ``error`` code, and whether trying again later may help)."""
    if response.status_code != 200:
        answer = read_error(response)
        retry = (
            " The stored tokens are kept; try again later."
            if (response.status_code >= 500 or answer.error is None)
            else ""
        )
        raise answer.as_error(
            TokenError,
            f"the {what} at {response.url} failed with HTTP {response.status_code}"
            f"{answer.detail}.{retry}",
        )
    if response.truncated:
        raise TokenError(f"the {what} response from {response.url} is too large")
    document = parse_json(
        response.body, what=f"{what} response", url=response.url, error=TokenError
    )
    try:
        return token_set_from_response(document, now=now, requested_scope=requested_scope or None)
    except ValueError as exc:
        reason = answer_text(response, exc, 300)
        raise TokenError(f"invalid {what} response from {response.url}: {reason}") from None
