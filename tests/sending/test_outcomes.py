"""What the relay answers becomes something a customer can act on (issue: one outbound
pipeline). Each of these failed before the pipeline: an international address killed a
batch, a relay refusing the login or the sender failed every recipient for good, the
operator's SMTP server without a customer relay left campaigns at 0 %, the local
outbox re-encoded List-Unsubscribe, a rate limit slept inside the worker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dkim
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import free_port
from tests.sending.conftest import add_contacts, proven
from tidings.accounts import services as accounts
from tidings.audience import mailing_lists, signup
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.outbox.models import OutboxMessage
from tidings.sending import engine, lifecycle, proofs, services
from tidings.sending.lifecycle import pause_for_relay
from tidings.sending.models import Delivery, OutboundMail, Relay

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

INTERNATIONAL = "jörg@exämple.de"
STORED = "jörg@xn--exmple-cua.de"  # as Tidings keeps it: the domain in its ASCII form


class Answers:
    """An SMTP server whose answers a test chooses."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.mail_from = "250 OK"
        self.data = "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if not self.mail_from.startswith("250"):
            return self.mail_from
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if not self.data.startswith("250"):
            return self.data
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def to(self) -> list[str]:
        return [r for rcpts, _ in self.received for r in rcpts]


def serve(handler: Answers, **kwargs: object) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def plain_relay(account, answers):  # type: ignore[no-untyped-def]
    """A relay without SMTPUTF8."""
    for port in serve(answers, enable_SMTPUTF8=False):
        yield Relay.objects.create(
            account=account, name="plain", host="127.0.0.1", port=port, security="none"
        )


@pytest.fixture
def utf8_relay(account, answers):  # type: ignore[no-untyped-def]
    for port in serve(answers, enable_SMTPUTF8=True):
        yield Relay.objects.create(
            account=account, name="utf8", host="127.0.0.1", port=port, security="none"
        )


def only_the_right_password(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
    return AuthResult(success=auth_data.password == b"right", handled=False)


def international(account, newsletter) -> Contact:  # type: ignore[no-untyped-def]
    return audience.add_contact(account, INTERNATIONAL, lists=[newsletter])


def test_an_international_address_fails_alone_where_the_relay_cannot_carry_it(
    account, newsletter, campaign, plain_relay, answers
):
    add_contacts(account, newsletter, 2)
    jorg = international(account, newsletter)
    lifecycle.start_campaign(campaign)
    assert sorted(answers.to()) == ["reader0@example.net", "reader1@example.net"]
    delivery = Delivery.objects.get(contact=jorg)
    assert delivery.status == "failed" and "SMTPUTF8" in delivery.last_error
    assert not Delivery.objects.filter(status="sending").exists()  # no claim left stuck
    jorg.refresh_from_db()
    assert jorg.status == Contact.Status.ACTIVE  # the address is not to blame
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_an_international_address_goes_through_a_relay_that_offers_smtputf8(
    account, newsletter, campaign, utf8_relay, answers
):
    international(account, newsletter)
    lifecycle.start_campaign(campaign)
    ((rcpts, raw),) = answers.received
    assert rcpts == [STORED]
    assert f"To: {STORED}".encode() in raw
    assert Delivery.objects.get().status == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("where", ["login", "sender"])
def test_a_relay_refusing_the_login_or_the_sender_pauses_the_campaign_and_says_why(
    account, newsletter, campaign, answers, mailbox, where
):
    add_contacts(account, newsletter, 3)
    kwargs: dict[str, object] = {}
    if where == "login":
        kwargs = {
            "auth_required": True,
            "auth_require_tls": False,
            "authenticator": only_the_right_password,
        }
    else:
        answers.mail_from = "550 5.7.1 sender not allowed"
    for port in serve(answers, **kwargs):
        relay = Relay.objects.create(
            account=account, name="strict", host="127.0.0.1", port=port, security="none",
            username="shop" if where == "login" else "", password="wrong",
        )  # fmt: skip
        lifecycle.start_campaign(campaign)
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.PAUSED
        assert "refused" in campaign.pause_reason
        # Nobody was failed for it: all still queued, and the customer was told.
        assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
        (notice,) = [m for m in mailbox if "paused" in m.subject]
        assert notice.to == [account.users.get().email] and "resume" in notice.body
        # Mended, resumed: everyone gets it once.
        answers.mail_from = "250 OK"
        relay.password = "right"
        relay.save()
        lifecycle.resume_campaign(campaign)
    assert sorted(answers.to()) == [f"reader{i}@example.net" for i in range(3)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.pause_reason == ""


def test_ten_refusals_in_a_row_after_data_pause_the_campaign(
    account, newsletter, campaign, plain_relay, answers
):
    answers.data = "554 5.7.1 message refused as spam"
    add_contacts(account, newsletter, 14)
    lifecycle.start_campaign(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and "10 messages" in campaign.pause_reason
    statuses = list(Delivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["failed"] * 10 + ["queued"] * 4
    # A refusal of the message is not the contacts' hard bounce.
    assert not Contact.objects.filter(status=Contact.Status.BOUNCED).exists()


def test_a_550_on_rcpt_stays_that_recipients_hard_bounce(
    account, newsletter, campaign, plain_relay, answers
):
    add_contacts(account, newsletter, 2)
    answers.data = "550 5.1.1 no such user"  # after DATA, about the mailbox
    lifecycle.start_campaign(campaign)
    assert Contact.objects.filter(status=Contact.Status.BOUNCED).count() == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_campaigns_go_through_the_operators_smtp_server_when_the_customer_has_no_relay(
    account, newsletter, campaign, smtp_mail
):
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    assert sorted(m["X-Envelope-To"] for m in smtp_mail.messages) == [
        "reader0@example.net",
        "reader1@example.net",
    ]
    assert smtp_mail.messages[0]["List-Unsubscribe"].startswith("<http")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_the_local_outbox_keeps_the_message_as_it_would_have_gone(
    account, newsletter, campaign, settings
):

    settings.EMAIL_DELIVERY = "outbox"
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    raw = OutboxMessage.objects.get().raw
    assert "\r\nList-Unsubscribe: <http://" in raw and "=?utf-8?" not in raw.split("\r\n\r\n")[0]


def test_a_rate_limit_gives_the_rest_back_instead_of_sleeping(
    account, newsletter, campaign, plain_relay, answers
):
    plain_relay.rate_per_second = 2
    plain_relay.save()
    add_contacts(account, newsletter, 5)
    started = time.monotonic()
    lifecycle.start_campaign(campaign)
    assert time.monotonic() - started < 1.5  # nobody slept through the limit
    assert len(answers.received) == 2
    assert Delivery.objects.filter(status="queued").count() == 3
    time.sleep(1.05)  # the batch task's countdown
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    result = engine.send_batch(campaign.pk, ids[0], ids[-1])
    assert result.sent == 2 and result.retry_at is not None
    assert len(answers.received) == 4 and len(set(answers.to())) == 4


def test_every_producer_signs_with_the_key_of_its_senders_domain(
    account, newsletter, campaign, customer, plain_relay, answers, client, mailbox
):
    keys = {}
    for owner, domain in ((account, "news.example.org"), (None, "example.com")):
        key = services.add_sending_domain(owner, domain)
        keys[key.dns_name] = key.dns_value
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)

    proofs.send_test(campaign, to=["me@example.org"], by=customer)

    accounts.update_profile(customer, by=customer, name="Ada King")  # a notice, operator's
    client.post("/password-reset/", {"email": customer.email})  # Django's own mail
    # The account's mail through its relay, the operator's own to its mailbox (memory).
    sent = [raw for _, raw in answers.received] + [m.raw for m in mailbox]
    assert len(sent) == 4
    for raw in sent:
        assert raw.startswith(b"DKIM-Signature:")
        assert dkim.verify(
            raw, dnsfunc=lambda name, timeout=5: keys[name.decode().rstrip(".")].encode()
        )
    kinds = set(OutboundMail.objects.values_list("kind", flat=True))
    assert kinds == {"test", "notice", "django"}


def test_the_campaign_page_says_why_the_relay_paused_it(client, customer, campaign):

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    pause_for_relay(campaign, "The relay refused the campaign: AUTH: 535 bad credentials")
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/").content.decode()
    assert "535 bad credentials" in page and "nobody was marked failed" in page


def test_mail_to_contacts_comes_from_the_sender_the_customer_chose_through_their_relay(
    client, customer, account, newsletter, plain_relay, answers
):
    key = proven(services.add_sending_domain(account, "news.example.org"))
    client.force_login(customer)
    response = client.post(
        "/audience/settings/",
        {"editable_attributes": "", "contact_sender": "Hello@News.Example.org"},
    )
    assert response.status_code == 302

    newsletter.visibility = "public"
    newsletter.save()
    form = mailing_lists.save_form(account, name="Footer", lists=[newsletter], consent_text="Yes")
    signup.request_signup(form, email="fan@example.net", lists=[newsletter], ip=None, user_agent="")
    ((rcpts, raw),) = answers.received
    assert rcpts == ["fan@example.net"] and b"<hello@news.example.org>" in raw
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: key.dns_value.encode())
