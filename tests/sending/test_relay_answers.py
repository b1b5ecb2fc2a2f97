"""What the relay answers decides what happens: 250 sent, 4xx retried with backoff,
5xx failed and counted as a hard bounce (a real aiosmtpd server gives the answers)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from tests.conftest import free_port
from tests.sending.conftest import add_contacts
from tidings.audience import services as audience
from tidings.audience.models import Contact, SuppressedContact
from tidings.audience.services import contact_digest
from tidings.campaigns.models import Campaign
from tidings.sending import engine, lifecycle
from tidings.sending.models import BounceRecord, Delivery, Relay

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]


class PickyServer:
    """Refuses `bounce*` for good, `later*` for now (until `recovered`), takes the rest."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.recovered = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("bounce"):
            return f"550 5.1.1 <{address}>: user unknown"
        if address.startswith("later") and not self.recovered:
            return "451 4.3.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.accepted.extend(envelope.rcpt_tos)
        return "250 2.0.0 queued"


@pytest.fixture
def picky() -> Iterator[tuple[PickyServer, int]]:
    handler, port = PickyServer(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_4xx_retries_with_backoff_and_5xx_is_a_hard_bounce(
    account, newsletter, campaign, picky, settings
):
    server, port = picky
    Relay.objects.create(
        account=account, name="picky", host="127.0.0.1", port=port, security="none"
    )

    add_contacts(account, newsletter, 2)
    gone = audience.add_contact(account, "bounce@example.net", lists=[newsletter])
    slow = audience.add_contact(account, "later@example.net", lists=[newsletter])
    lifecycle.start_campaign(campaign)

    assert sorted(server.accepted) == ["reader0@example.net", "reader1@example.net"]
    bounced = Delivery.objects.get(contact=gone)
    assert bounced.status == "failed" and "550" in bounced.last_error
    gone.refresh_from_db()
    assert gone.status == Contact.Status.BOUNCED
    assert SuppressedContact.objects.filter(digest=contact_digest(gone.email)).exists()
    assert BounceRecord.objects.filter(contact=gone, kind="hard", source="smtp").exists()

    waiting = Delivery.objects.get(contact=slow)
    assert waiting.status == "queued" and waiting.not_before > timezone.now()
    assert "451" in waiting.last_error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # one is still to come

    # Later, the server takes it; the sweep finds the due delivery again.
    server.recovered = True
    engine.recover_stalled(now=waiting.not_before + timezone.timedelta(seconds=1))
    # The sweep's batch ran eagerly with the real clock: it is not due yet then, so
    # run it as the worker would when the countdown ends.
    Delivery.objects.filter(pk=waiting.pk).update(not_before=timezone.now())
    engine.send_batch(campaign.pk, waiting.pk, waiting.pk)
    assert server.accepted.count("later@example.net") == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_temporary_failures_give_up_after_the_last_attempt(
    account, newsletter, campaign, picky, settings
):
    _, port = picky
    settings.SENDING = {**settings.SENDING, "max_attempts": 2}
    Relay.objects.create(account=account, name="p", host="127.0.0.1", port=port, security="none")

    slow = audience.add_contact(account, "later@example.net", lists=[newsletter])
    lifecycle.start_campaign(campaign)
    delivery = Delivery.objects.get(contact=slow)
    assert delivery.status == "queued" and delivery.attempts == 1
    Delivery.objects.filter(pk=delivery.pk).update(not_before=None)
    engine.send_batch(campaign.pk, delivery.pk, delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    slow.refresh_from_db()
    assert slow.status == Contact.Status.ACTIVE  # a temporary failure is no bounce


def test_an_unreachable_relay_is_a_temporary_failure(account, newsletter, campaign):
    Relay.objects.create(
        account=account, name="down", host="127.0.0.1", port=free_port(), security="none"
    )
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    delivery = Delivery.objects.get()
    assert delivery.status == "queued" and "connect" in delivery.last_error
