"""The flow's settings: what the user told the provider, as the flow needs it.

Kept apart from the flow itself so the grant modules can name these types without importing
the orchestrator that imports them. The grant that replaces a login is in
:mod:`.machine_grant`, a logout's result in :mod:`.logout`: a provider that only reconnects
makes neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .url_rules import STRICTEST, UrlRules
from .values import Value, set_field

if TYPE_CHECKING:
    from .machine_grant import MachineGrant

__all__ = [
    "CLIENT_CREDENTIALS_GRANT",
    "DEVICE_GRANT",
    "JWT_BEARER_GRANT",
    "AssertionSource",
    "ClientSettings",
    "FlowSettings",
]

CLIENT_CREDENTIALS_GRANT = "client_credentials"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# (audience, resource) -> a JWT to present, sync or async
AssertionSource = Callable[[str, str], "str | Awaitable[str]"]


def _no_preference() -> bool:
    return False


# Neither is a frozen dataclass: a reconnect makes both, and on Python 3.11 a dataclass
# compiles each method it generates when its module is imported (see .values).
class ClientSettings(Value):
    """What the user told the provider about the client. A value, not a named tuple: it holds
    the client secret, which must reach text only through the repr (which leaves it out)."""

    __slots__ = (
        "application_type",
        "client_id",
        "client_metadata_url",
        "client_name",
        "client_secret",
    )
    _hidden = frozenset({"client_secret"})
    client_name: str
    client_id: str | None
    client_secret: str | None
    client_metadata_url: str | None
    application_type: str

    def __init__(
        self,
        client_name: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
        application_type: str = "native",
    ) -> None:
        set_field(self, "client_name", client_name)
        set_field(self, "client_id", client_id)
        set_field(self, "client_secret", client_secret)
        set_field(self, "client_metadata_url", client_metadata_url)
        set_field(self, "application_type", application_type)


class FlowSettings(Value):
    """The provider's configuration, as the flow needs it. A value, like
    :class:`ClientSettings`."""

    __slots__ = (
        "client",
        "device",
        "dpop",
        "extra_scopes",
        "fixed_port",
        "interactive",
        "issuer",
        "leeway",
        "login_hint",
        "login_timeout",
        "machine",
        "prefer_device",
        "protocol_version",
        "redirect_uri",
        "scopes",
        "server_url",
        "urls",
    )
    server_url: str  # canonical URL of the protected resource
    client: ClientSettings
    scopes: tuple[str, ...] | None  # the user's scopes: never replaced
    redirect_uri: str | None
    # the loopback port the user fixed (redirect_port=, BrowserLogin(port=)): it wins over a
    # stored registration's redirect URI, whose client is updated or registered again for it
    fixed_port: int | None
    leeway: float
    login_timeout: float
    interactive: bool  # False: raise LoginRequiredError instead of a login
    device: bool  # the login is the device authorization grant
    # asked at login time: True when no browser can be opened, so the device grant is better
    prefer_device: Callable[[], bool]
    protocol_version: str | None
    # None: the authorization code grant with PKCE (a person logs in)
    machine: MachineGrant | None
    extra_scopes: tuple[str, ...]
    # DPoP (RFC 9449): None = where the authorization server offers it, True = always (a
    # Bearer token is refused), False = never
    dpop: bool | None
    # the authorization server the user expects (its issuer): no other one is ever contacted
    issuer: str | None
    # where a server may send the client: https, and loopback only for a loopback resource
    urls: UrlRules
    # what LoginRequiredError tells the user to do (the command that logs in to the same store)
    login_hint: Callable[[], str] | None

    def __init__(
        self,
        server_url: str,
        client: ClientSettings,
        scopes: tuple[str, ...] | None = None,
        redirect_uri: str | None = None,
        fixed_port: int | None = None,
        leeway: float = 60.0,
        login_timeout: float = 300.0,
        interactive: bool = True,
        device: bool = False,
        prefer_device: Callable[[], bool] = _no_preference,
        protocol_version: str | None = None,
        machine: MachineGrant | None = None,
        extra_scopes: tuple[str, ...] = (),
        dpop: bool | None = None,
        issuer: str | None = None,
        urls: UrlRules = STRICTEST,
        login_hint: Callable[[], str] | None = None,
    ) -> None:
        set_field(self, "server_url", server_url)
        set_field(self, "client", client)
        set_field(self, "scopes", scopes)
        set_field(self, "redirect_uri", redirect_uri)
        set_field(self, "fixed_port", fixed_port)
        set_field(self, "leeway", leeway)
        set_field(self, "login_timeout", login_timeout)
        set_field(self, "interactive", interactive)
        set_field(self, "device", device)
        set_field(self, "prefer_device", prefer_device)
        set_field(self, "protocol_version", protocol_version)
        set_field(self, "machine", machine)
        set_field(self, "extra_scopes", extra_scopes)
        set_field(self, "dpop", dpop)
        set_field(self, "issuer", issuer)
        set_field(self, "urls", urls)
        set_field(self, "login_hint", login_hint)

    @property
    def private_key(self) -> str | bytes | None:
        """The key of a ``private_key_jwt`` client, if the user gave one."""
        return self.machine.private_key if self.machine is not None else None

    @property
    def signing_algorithm(self) -> str:
        return self.machine.signing_algorithm if self.machine is not None else "RS256"

    @property
    def own_credentials(self) -> bool:
        """Whether this client presents credentials the user gave: a pre-registered secret, a
        private key, or an identity assertion (fixed, from a callable, or an ID-JAG). These
        belong to one authorization server, and another one could replay them there, so they
        are bound to the first server they are used with (or ``issuer=``)."""
        return bool(
            self.client.client_secret
            or self.private_key is not None
            or (self.machine is not None and self.machine.grant_type == JWT_BEARER_GRANT)
        )
