"""When tokens are bound to a DPoP key (RFC 9449), and which key a request proves.

The decision is made once per record, when it gets its key, and kept in the store with it:
every token request for the record then carries a proof of that key (unless ``dpop=False``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from .dpop import DPOP_ALGORITHM, DPoPKey
from .errors import ConfigurationError
from .server_text import clean_text
from .tokens import ServerRecord

if TYPE_CHECKING:
    from .challenges import Challenge

__all__ = ["proof_key", "wants_dpop", "with_dpop_key"]

logger = logging.getLogger("mcp_client_auth.flow")


def wants_dpop(
    setting: bool | None,
    record: ServerRecord,
    challenge: Challenge | None,
    *,
    resource_offers: bool,
) -> bool:
    """Whether to bind ``record``'s tokens to a DPoP key.

    ``dpop=True`` (``setting``): always; ``False``: never. ``None``: where the authorization
    server offers ES256 (``dpop_signing_alg_values_supported``) and the resource takes DPoP:
    it answered with a ``DPoP`` challenge (``resource_offers``, or ``challenge``), or its
    metadata lists ES256 in ``dpop_signing_alg_values_supported`` or sets
    ``dpop_bound_access_tokens_required``. A resource that only ever says ``Bearer`` gets
    bearer tokens, whatever the server offers.
    """
    if setting is False:
        return False
    metadata = record.server_metadata or {}
    algorithms = metadata.get("dpop_signing_alg_values_supported")
    if algorithms and DPOP_ALGORITHM not in algorithms:
        if setting:
            raise ConfigurationError(
                f"dpop=True, but the authorization server {record.issuer} accepts DPoP "
                f"proofs only as {clean_text(', '.join(map(str, algorithms)), 200)}, not "
                f"{DPOP_ALGORITHM}; pass dpop=None to use bearer tokens there"
            )
        logger.info("%s offers DPoP without %s; using bearer tokens", record.issuer, DPOP_ALGORITHM)
        return False
    if setting:
        return True
    resource = record.resource_metadata or {}
    if resource.get("dpop_bound_access_tokens_required") is True:
        return True  # even where the server does not say it offers DPoP
    if not algorithms:
        return False
    resource_algorithms = resource.get("dpop_signing_alg_values_supported") or ()
    return (
        resource_offers
        or (challenge is not None and challenge.scheme.lower() == "dpop")
        or DPOP_ALGORITHM in resource_algorithms
    )


def with_dpop_key(
    setting: bool | None,
    record: ServerRecord,
    challenge: Challenge | None = None,
    *,
    resource_offers: bool,
) -> ServerRecord:
    """``record`` with a new DPoP key pair where it should have one and has none yet."""
    if (
        record.dpop_key is None
        and record.server_metadata
        and wants_dpop(setting, record, challenge, resource_offers=resource_offers)
    ):
        return replace(record, dpop_key=DPoPKey.generate())
    return record


def proof_key(setting: bool | None, record: ServerRecord) -> DPoPKey | None:
    """The key whose proof a token request for ``record`` carries (none with ``dpop=False``)."""
    return record.dpop_key if setting is not False else None
