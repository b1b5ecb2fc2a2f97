"""Every producer of mail at once, through one real relay that takes one connection at a
time and enforces a rate (aiosmtpd in this process, real `celery worker` processes on
Redis): a campaign, transactional messages through the API, test sends, a product
update, Tidings's notices, double opt-in mails to contacts, answers to contacts'
requests and Django's password reset. At the relay, each message arrives exactly once,
on one connection at a time, never faster than the rate, and DKIM-signed by the key of
its sender's domain, verified there (P5, P19, P21)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import dkim
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.conf import settings as django_settings
from django.db import connection

from tests.conftest import free_port
from tests.factories import UserFactory
from tests.sending.workers import Workers, wait_until
from tidings.accounts import apikeys
from tidings.accounts import services as accounts
from tidings.audience import mailing_lists, rights, signup
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign
from tidings.celery import app as celery_app
from tidings.sending import lifecycle, proofs, services
from tidings.sending.models import Delivery, OutboundMail, Relay, SendingDomain
from tidings.sending.product_updates import send_product_update

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RATE = 8  # messages per second the relay takes
# The relay counts a second as 0.9 s: messages sent a second apart may arrive closer.
WINDOW = 0.9
READERS = 40


@dataclass
class LimitedRelay:
    """Takes one connection at a time (a second gets 421) and `RATE` messages a second
    (more get 451); checks every message's DKIM signature against the published keys."""

    keys: dict[str, str]
    active: int = 0
    most: int = 0
    refused_connections: int = 0
    refused_for_rate: int = 0
    unsigned: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    message_ids: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        return self.keys.get(name.decode().rstrip("."), "").encode()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        now = time.monotonic()
        if len([t for t in self.arrivals if now - t < WINDOW]) >= RATE:
            self.refused_for_rate += 1
            return "451 4.7.0 too fast, slow down"
        self.arrivals.append(now)
        content = envelope.content
        if not dkim.verify(content, dnsfunc=self.dns):
            self.unsigned.append(envelope.rcpt_tos[0])
        head = content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        message_id = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("message-id:")
        )
        self.message_ids[message_id] += 1
        self.kinds["campaign" if "\r\nList-Id:" in head else "other"] += 1
        return "250 2.0.0 queued"


class OneAtATime(SMTP):
    relay: LimitedRelay

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self.relay.active += 1
        self.relay.most = max(self.relay.most, self.relay.active)
        if self.relay.active > 1:
            self.relay.refused_connections += 1
            transport.write(b"421 4.7.0 one connection at a time\r\n")
            transport.close()

    def connection_lost(self, exc):  # type: ignore[no-untyped-def]
        self.relay.active -= 1
        super().connection_lost(exc)


class OneAtATimeController(Controller):
    def factory(self):  # type: ignore[no-untyped-def]
        smtp = OneAtATime(self.handler, **self.SMTP_kwargs)
        smtp.relay = self.handler
        return smtp


@pytest.fixture
def limited_relay() -> Iterator[tuple[LimitedRelay, int]]:
    relay, port = LimitedRelay(keys={}), free_port()
    controller = OneAtATimeController(relay, hostname="127.0.0.1", port=port)
    controller.start()
    yield relay, port
    controller.stop()


@pytest.fixture
def through_the_broker(settings):  # type: ignore[no-untyped-def]
    """Jobs queued by this process go to Redis, for the workers, as in production."""
    before = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = django_settings.REDIS_URL, False
    yield
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = before


def publish(relay: LimitedRelay, domain: SendingDomain) -> None:
    relay.keys[domain.dns_name] = domain.dns_value


def in_thread(work, errors: list[BaseException]) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_every_producer_at_once_through_one_limited_relay(
    customer, client, limited_relay, through_the_broker
):
    relay, port = limited_relay
    account = customer.account
    Relay.objects.create(
        name="the one relay", host="127.0.0.1", port=port, security="none",
        max_connections=1, rate_per_second=RATE,
    )  # fmt: skip
    publish(relay, services.add_sending_domain(account, "news.example.org"))
    publish(relay, services.add_sending_domain(None, "example.com"))  # the operator's
    services.set_postal_address(account, "12 Baker Lane, 1000 Brussels", by=customer)
    colleagues = [UserFactory(account=account, email=f"colleague{i}@example.org") for i in (1, 2)]
    newsletter = MailingList.objects.create(
        account=account, name="News", optin="double", visibility="public"
    )
    for i in range(READERS):
        audience.add_contact(
            account, f"reader{i}@example.net", name=f"Reader {i}", lists=[newsletter]
        )
    asker = audience.add_contact(account, "asker@example.net", lists=[newsletter])
    request, _ = rights.request_from_contact(asker, kind="access")
    form = mailing_lists.save_form(account, name="Footer", lists=[newsletter], consent_text="Yes")
    campaign = Campaign.objects.create(
        account=account, name="November", subject="News for {{ contact.first_name }}",
        from_email="news@news.example.org", body="<p>Hello {{ contact.name }}</p>",
    )  # fmt: skip
    campaign.lists.add(newsletter)
    _, key = apikeys.create_api_key(account, name="shop", by=customer)
    OutboundMail.objects.all().delete()  # what the set-up posted is not part of the count

    workers = Workers(django_settings.REDIS_URL, lease=60, streams=4)
    errors: list[BaseException] = []
    try:
        workers.start("one")
        workers.start("two")
        producers = [
            lambda: lifecycle.start_campaign(campaign),
            lambda: [_order(client, key, i) for i in range(6)],
            lambda: proofs.send_test(
                campaign, to=["me@example.org", "boss@example.org"], by=customer
            ),
            lambda: send_product_update("What is new", "Segments on engagement."),
            lambda: accounts.update_profile(customer, by=customer, name="Ada King"),
            lambda: [
                signup.request_signup(
                    form, email=f"fan{i}@example.net", lists=[newsletter], ip=None, user_agent=""
                )
                for i in range(4)
            ],
            lambda: rights.answer_request(account, request, answer="Here is your data."),
            lambda: _reset(colleagues[0].email),  # the page's form, through Django's mail
        ]
        threads = [in_thread(work, errors) for work in producers]
        for thread in threads:
            thread.join()
        assert not errors, errors

        def all_done() -> bool:
            ledger_open = OutboundMail.objects.filter(status__in=["queued", "sending"]).exists()
            return not ledger_open and Campaign.objects.get(pk=campaign.pk).status == "sent"

        wait_until(all_done, 180, every=lambda: workers.send("recover_stalled"))
    finally:
        workers.stop_all()

    ledger = Counter(OutboundMail.objects.values_list("kind", flat=True))
    assert ledger == {
        "transactional": 6, "test": 2, "product_update": 3, "notice": 1, "contact": 5,
        "django": 1,
    }, ledger  # fmt: skip
    assert set(OutboundMail.objects.values_list("status", flat=True)) == {"sent"}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    expected = Delivery.objects.count() + OutboundMail.objects.count()
    # Exactly once each, one connection at a time, never faster than the rate, all signed.
    assert sum(relay.message_ids.values()) == expected == len(relay.message_ids)
    assert relay.kinds["campaign"] == READERS + 1
    assert relay.most == 1 and relay.refused_connections == 0
    assert relay.refused_for_rate == 0
    for i, start in enumerate(relay.arrivals):
        assert len([t for t in relay.arrivals[i:] if t - start < WINDOW]) <= RATE
    assert relay.unsigned == []


def _order(client, key: str, n: int) -> None:  # type: ignore[no-untyped-def]
    """A shop's receipt through the API."""
    response = client.post(
        "/api/v1/tx",
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
        data={
            "to": f"buyer{n}@example.net",
            "subject": "Order {{ data.n }}",
            "body": "<p>Thanks</p>",
            "from_email": "shop@news.example.org",
            "data": {"n": n},
        },
    )
    assert response.status_code == 202, response.content


def _reset(address: str) -> None:
    """Someone forgot their password: Django's own view sends the mail."""
    from django.test import Client

    response = Client().post("/password-reset/", {"email": address})
    assert response.status_code == 302, response.content
