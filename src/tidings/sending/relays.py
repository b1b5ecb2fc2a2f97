"""Which relay a message goes through, and that relay's settings as one value.

An account's mail (campaigns, tests, transactional messages, mail to its contacts)
goes through the account's own active relay, else the operator's (a `Relay` without an
account, `tidings manage relay add`), else the operator's SMTP server from the settings
(TIDINGS_EMAIL=smtp, EMAIL_HOST...), else the local mailbox (TIDINGS_EMAIL=outbox, the
embedded default). The operator's own mail (notices, product updates, password resets)
takes the same path without the account's relay.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from tidings.accounts.models import Account
from tidings.sending.models import Relay

# The local mailbox, or the test suite's memory: no connection, no slot, no rate.
LOCAL = None


@dataclass(frozen=True)
class RelayConfig:
    """A relay's settings, read once per batch (the row may change meanwhile). `key`
    names its connection slots and rate limits, shared by every worker."""

    key: str
    id: int | None
    name: str
    host: str
    port: int
    security: str
    username: str
    password: str
    max_connections: int
    rate_per_second: int
    rate_per_hour: int
    esp: str = ""
    # A customer's relay: connected to only at public addresses (core.netguard), unless
    # the operator allows its host (TIDINGS_ALLOWED_RELAY_HOSTS). The operator's are not.
    guarded: bool = False

    @classmethod
    def of(cls, relay: Relay) -> RelayConfig:
        return cls(
            key=f"relay:{relay.pk}",
            id=relay.pk,
            name=relay.name,
            host=relay.host,
            port=relay.port,
            security=relay.security,
            username=relay.username,
            password=relay.password,
            max_connections=max(1, relay.max_connections),
            rate_per_second=relay.rate_per_second,
            rate_per_hour=relay.rate_per_hour,
            esp=relay.esp,
            guarded=relay.account_id is not None,
        )

    @classmethod
    def from_settings(cls) -> RelayConfig:
        """The operator's SMTP server of TIDINGS_EMAIL=smtp."""
        security = Relay.Security.NONE
        if settings.EMAIL_USE_SSL:
            security = Relay.Security.TLS
        elif settings.EMAIL_USE_TLS:
            security = Relay.Security.STARTTLS
        return cls(
            key="settings",
            id=None,
            name="operator's mail server (settings)",
            host=settings.EMAIL_HOST,
            port=settings.EMAIL_PORT,
            security=security,
            username=settings.EMAIL_HOST_USER,
            password=settings.EMAIL_HOST_PASSWORD,
            max_connections=max(1, settings.EMAIL_MAX_CONNECTIONS),
            rate_per_second=settings.EMAIL_RATE_PER_SECOND,
            rate_per_hour=settings.EMAIL_RATE_PER_HOUR,
        )


def pick_relay(account: Account | int | None) -> Relay | None:
    """The account's own active relay, else the operator's (None: the operator's SMTP
    server of the settings, or the local mailbox)."""
    account_id = account.pk if isinstance(account, Account) else account
    relays = Relay.objects.filter(active=True).order_by("pk")
    own = relays.filter(account_id=account_id).first() if account_id is not None else None
    return own or relays.filter(account__isnull=True).first()


def relay_for(account_id: int | None) -> RelayConfig | None:
    """The relay of `account_id`'s mail (None: the operator's own mail); LOCAL (None)
    when mail goes to the local mailbox."""
    relay = pick_relay(account_id)
    if relay is not None:
        return RelayConfig.of(relay)
    if settings.EMAIL_DELIVERY == "smtp":
        return RelayConfig.from_settings()
    return LOCAL
