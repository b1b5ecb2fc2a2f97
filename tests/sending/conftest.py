"""Fixtures of the sending tests: an account with a list, contacts, a relay pointing at a
real aiosmtpd server, and a campaign."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import free_port
from tidings.audience import services as audience
from tidings.audience.models import Contact, MailingList
from tidings.campaigns.models import Campaign
from tidings.sending import services
from tidings.sending.models import Relay, SendingDomain

POSTAL_ADDRESS = "12 Baker Lane, 1000 Brussels, Belgium"


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    # Every campaign must show one (CAN-SPAM): without it nothing is sent.
    services.set_postal_address(customer.account, POSTAL_ADDRESS, by=customer)
    return customer.account


@pytest.fixture
def newsletter(account):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=account, name="Newsletter")


def add_contacts(account: Any, mailing_list: MailingList, n: int, **kwargs: Any) -> list[Contact]:
    return [
        audience.add_contact(
            account, f"reader{i}@example.net", name=f"Reader {i}", lists=[mailing_list], **kwargs
        )
        for i in range(n)
    ]


def proven(domain: SendingDomain) -> SendingDomain:
    """`domain` as if its proof and DKIM records were found in DNS: its address may be
    in From (tests/sending/test_domains.py proves the check itself against real DNS)."""
    SendingDomain.objects.filter(pk=domain.pk).update(proven_at=timezone.now())
    domain.refresh_from_db()
    return domain


@pytest.fixture
def relay(account, smtp_server, transactional_db, customer_relays_on_loopback):  # type: ignore[no-untyped-def]
    # A relay takes several connections: the campaign's streams send on threads of their
    # own, which see only committed rows (hence transactional_db).
    return Relay.objects.create(
        account=account,
        name="test relay",
        host=smtp_server.host,
        port=smtp_server.port,
        security=Relay.Security.NONE,
    )


@pytest.fixture
def campaign(account, newsletter):  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        account=account,
        name="November news",
        subject="News for {{ contact.first_name }}",
        from_name="Example News",
        from_email="news@news.example.org",
        body='<p>Hello {{ contact.name }}, read <a href="https://example.org/a?x=1&amp;y=2">this</a>.</p>',
    )
    campaign.lists.add(newsletter)
    return campaign


class RawSink:
    """An aiosmtpd handler that keeps each message's bytes as they arrived."""

    def __init__(self) -> None:
        self.raw: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.raw.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def raw_sink(account, transactional_db, customer_relays_on_loopback):  # type: ignore[no-untyped-def]
    # A relay of its own: streams on threads, which see only committed rows.
    from aiosmtpd.controller import Controller

    sink, port = RawSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    Relay.objects.create(account=account, name="raw", host="127.0.0.1", port=port, security="none")
    yield sink
    controller.stop()
