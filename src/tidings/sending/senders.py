"""Who a message says it is from: the one place that decides the From, Reply-To,
envelope sender and DKIM key of every message (campaigns, tests, transactional mail,
mail to contacts, Tidings's own).

A customer may put a domain in From only once it is proven theirs (a TXT record
Tidings asked for) and its DKIM key is published (`sending.domains`); until then their
mail goes out from the operator's address, with their name as the display name and
their own address as Reply-To (as Mailchimp does), signed with the operator's key. So
nobody sends as a domain they do not control through the operator's relay. The
operator's own mail (no account) is sent as it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings

from tidings.accounts.models import Account
from tidings.sending.message import domain_of
from tidings.sending.models import SendingDomain


@dataclass(frozen=True)
class Sender:
    from_email: str
    from_name: str
    reply_to: str
    # MAIL FROM (Return-Path): TIDINGS_BOUNCE_ADDRESS, else the From.
    envelope: str
    dkim: SendingDomain | None

    @property
    def domain(self) -> str:
        return domain_of(self.from_email)


def operator_address() -> tuple[str, str]:
    """(name, address) of the operator's own mail (TIDINGS_FROM_EMAIL)."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return name, address


def signing_domain(account_id: int | None, from_email: str) -> SendingDomain | None:
    """The DKIM key for mail from `from_email`: the account's own for its domain once
    proven, else the operator's for it (mail sent "via" the operator), else none."""
    domain = domain_of(from_email)
    keys = SendingDomain.objects.filter(domain=domain)
    own = None
    if account_id is not None:
        own = keys.filter(account_id=account_id, proven_at__isnull=False).first()
    return own or keys.filter(account__isnull=True).first()


def proven(account_id: int, from_email: str) -> bool:
    """Whether `account_id` may put `from_email`'s domain in From."""
    return SendingDomain.objects.filter(
        account_id=account_id, domain=domain_of(from_email), proven_at__isnull=False
    ).exists()


def sender_for(
    account_id: int | None, *, from_email: str, from_name: str = "", reply_to: str = ""
) -> Sender:
    """The sender a message of `account_id` (None: the operator's own mail) goes out
    with, for the From the producer asked for."""
    name, address = from_name, from_email
    _, operators = operator_address()
    operators_own = address.lower() == operators.lower()
    if account_id is not None and not operators_own and not proven(account_id, address):
        # Not proven theirs (yet): the operator's address; replies still reach them.
        reply_to = reply_to or address
        if not name:
            account_name = Account.objects.filter(pk=account_id).values_list("name", flat=True)
            name = account_name.first() or ""
        address = operators
    return Sender(
        from_email=address,
        from_name=name,
        reply_to=reply_to,
        envelope=settings.SENDING["bounce_address"] or address,
        dkim=signing_domain(account_id, address),
    )
