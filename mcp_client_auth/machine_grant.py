"""The grant a provider runs in place of the interactive login, where no person is present
(:class:`~.client_credentials.ClientCredentials`, :class:`~.client_credentials.IdentityAssertion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .flow_types import AssertionSource
    from .token_exchange import IdJagExchange

__all__ = ["MachineGrant"]


@dataclass(frozen=True)
class MachineGrant:
    """A grant in place of the interactive login, where no person is present.

    ``grant_type`` is :data:`CLIENT_CREDENTIALS_GRANT` or :data:`JWT_BEARER_GRANT`. The
    client authenticates with ``private_key`` (``private_key_jwt``) where one is given; the
    JWT bearer grant presents what ``assertion`` returns, or the ID-JAG ``token_exchange``
    obtains. Secrets stay out of the repr.
    """

    grant_type: str
    private_key: str | bytes | None = field(default=None, repr=False)
    signing_algorithm: str = "RS256"
    assertion: AssertionSource | None = field(default=None, repr=False)
    token_exchange: IdJagExchange | None = None
