"""Campaigns spend credits (billing.credits): reserved once when the campaign starts,
refused before it starts when short (with a link to order), settled when it finishes or
is cancelled (what reached the relay spent, the rest returned); a plan's contact limit
instead of credits."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.test_recharge import kept_on_test_gateway, turn_on
from tests.sending.conftest import add_contacts
from tests.sending.test_checklist import refused_everywhere
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.billing import credits, recharge
from tidings.billing.models import CreditEntry, Offer, Order, Price, Subscription, VatTreatment
from tidings.campaigns.models import Campaign
from tidings.sending import checklist, engine, lifecycle
from tidings.sending.models import Delivery


@pytest.fixture(autouse=True)
def _five_free_credits(settings):  # type: ignore[no-untyped-def]
    settings.BILLING = {**settings.BILLING, "free_credits": 5}


def available(account) -> int:  # type: ignore[no-untyped-def]
    return credits.balance_of(account).available


@pytest.mark.promise("P4")
def test_starting_reserves_one_credit_per_recipient_once(account, newsletter, campaign):
    add_contacts(account, newsletter, 3)
    lifecycle.start_campaign(campaign)
    assert credits.reserved_for(campaign.pk) == 3
    assert CreditEntry.objects.filter(campaign_id=campaign.pk, kind="reserve").count() == 1


def test_a_campaign_beyond_the_balance_is_refused_before_it_starts(
    client, customer, account, newsletter, campaign
):
    add_contacts(account, newsletter, 6)
    found = next(c for c in checklist.checklist(campaign).checks if c.key == "credits")
    assert found.state == checklist.BLOCKING and found.fix_url == "/pricing/"
    refused_everywhere(client, customer, campaign, "needs 6 credits")
    assert available(account) == 5
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert 'href="/pricing/"' in page


def test_a_scheduled_campaign_short_of_credits_does_not_start(account, newsletter, campaign):
    add_contacts(account, newsletter, 3)
    lifecycle.schedule_campaign(campaign, timezone.now() + timedelta(minutes=1))
    credits.reserve_for_campaign(account, 999, 4)  # another campaign took the credits
    assert lifecycle.start_due_campaigns(timezone.now() + timedelta(minutes=2)) == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED


def test_cancelling_returns_the_unsent_credits(account, newsletter, campaign, settings):
    # Nothing is sent here: no relay takes the messages before the cancel.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    add_contacts(account, newsletter, 4)
    lifecycle.start_campaign(campaign)
    assert available(account) == 1
    lifecycle.cancel_campaign(campaign)
    assert available(account) == 5
    assert credits.balance_of(account).reserved == 0
    # Settling again (a repeated cancel, a late finish) changes nothing.
    assert credits.settle_campaign(account, campaign.pk, sent=0) == 0


def test_a_refused_reservation_names_the_credits_asked_for_without_counting_again(
    account, newsletter, campaign
):
    add_contacts(account, newsletter, 2)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        with (
            CaptureQueriesContext(connection) as queries,
            pytest.raises(lifecycle.SendingError, match="needs 6 credits"),
        ):
            lifecycle._reserve_credits(locked, 6)
    # The caller counted the recipients once; the refusal reads that number.
    assert not [q for q in queries if Contact._meta.db_table in q["sql"]]
    assert available(account) == 5


@pytest.mark.promise("P4")
def test_a_finished_campaign_spends_what_went_and_returns_the_rest(
    account, newsletter, campaign, settings
):
    # Started, its batch left queued, then sent here by hand after one contact left.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.EMAIL_DELIVERY = "outbox"
    contacts = add_contacts(account, newsletter, 4)
    lifecycle.start_campaign(campaign)
    assert (available(account), credits.balance_of(account).reserved) == (1, 4)
    audience.unsubscribe(contacts[1])
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert engine.send_batch(campaign.pk, ids[0], ids[-1]).sent == 3
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT  # finished by finish_if_done
    balance = credits.balance_of(account)
    assert (balance.available, balance.reserved) == (5 - 3, 0)
    assert CreditEntry.objects.get(campaign_id=campaign.pk, kind="spend").messages == 3


def test_cancelling_spends_the_messages_that_may_be_with_the_relay(
    account, newsletter, campaign, settings
):
    # Two workers claimed chunks (two messages, then one) when the customer cancels:
    # each sends its chunk one message at a time, so at most one of each may be with
    # the relay, its outcome not known yet. Those two cost their credits; the other
    # three, never attempted, return.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    add_contacts(account, newsletter, 5)
    lifecycle.start_campaign(campaign)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert len(engine.claim(campaign, ids[0], ids[-1], "worker-1", limit=2)) == 2
    assert len(engine.claim(campaign, ids[0], ids[-1], "worker-2", limit=1)) == 1
    lifecycle.cancel_campaign(campaign)
    assert Delivery.objects.filter(status=Delivery.Status.SENDING).count() == 3
    balance = credits.balance_of(account)
    assert (balance.available, balance.reserved) == (5 - 2, 0)
    assert CreditEntry.objects.get(campaign_id=campaign.pk, kind="spend").messages == 2


def test_a_plan_replaces_credits_up_to_its_contact_limit(customer, account, newsletter, campaign):
    offer = Offer.objects.create(
        kind="plan", name="Tiny", period="month", contact_limit=2, vat_treatment=VatTreatment.EXEMPT
    )
    order = Order.objects.create(
        account=account, offer=offer, currency="EUR", amount=1, gateway="test",
        idempotency_key="k", status="paid", buyer_kind="person", billing_name="A",
        billing_address="B", billing_country="BE",
    )  # fmt: skip
    Subscription.objects.create(
        account=account, offer=offer, order=order,
        current_period_end=timezone.now() + timedelta(days=30),
    )  # fmt: skip
    add_contacts(account, newsletter, 3)
    with pytest.raises(lifecycle.SendingError, match="your plan Tiny allows 2"):
        lifecycle.start_campaign(campaign)
    Contact.objects.filter(account=account, email="reader2@example.net").delete()
    lifecycle.start_campaign(campaign)
    assert credits.reserved_for(campaign.pk) == 0  # the plan pays, not credits
    assert available(account) == 5


def test_credits_not_required_lets_every_campaign_start(account, newsletter, campaign, settings):
    settings.BILLING = {**settings.BILLING, "credits_required": False}
    add_contacts(account, newsletter, 6)
    lifecycle.start_campaign(campaign)
    assert credits.reserved_for(campaign.pk) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_campaigns_started_at_once_cannot_spend_the_same_credits(account, newsletter, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # starting is what is tested, not sending
    add_contacts(account, newsletter, 4)
    campaigns = [
        Campaign.objects.create(
            account=account,
            name=f"c{i}",
            subject="Hello",
            from_email="news@example.org",
            body="<p>Hello {{ unsubscribe_url }}</p>",
        )
        for i in range(2)
    ]
    for c in campaigns:
        c.lists.add(newsletter)
    assert checklist.checklist(campaigns[0]).blocking == []
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start(campaign: Campaign) -> None:
        try:
            barrier.wait()
            lifecycle.start_campaign(campaign)
            outcomes.append("started")
        except lifecycle.SendingError as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(c,)) for c in campaigns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert sorted(outcomes)[1] == "started" and "needs 4 credits" in sorted(outcomes)[0]
    assert available(account) == 1


def test_sending_suspended_for_an_unpaid_renewal_is_refused_with_a_link_to_billing(
    client, customer, account, newsletter, campaign
):
    offer = Offer.objects.create(
        kind="plan",
        name="Tiny",
        period="month",
        contact_limit=10,
        vat_treatment=VatTreatment.EXEMPT,
    )
    order = Order.objects.create(
        account=account, offer=offer, currency="EUR", amount=1, gateway="test",
        idempotency_key="k", status="paid", buyer_kind="person", billing_name="A",
        billing_address="B", billing_country="BE",
    )  # fmt: skip
    now = timezone.now()
    sub = Subscription.objects.create(
        account=account, offer=offer, order=order, current_period_end=now,
        payment_failed_at=now - timedelta(days=14), dunning_step=4, sending_suspended_at=now,
    )  # fmt: skip
    add_contacts(account, newsletter, 2)
    found = next(c for c in checklist.checklist(campaign).checks if c.key == "payment")
    assert found.state == checklist.BLOCKING and found.fix_url == "/account/billing/"
    refused_everywhere(client, customer, campaign, "Sending is suspended")
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert 'href="/account/billing/"' in page
    # Paid: the check is gone and the campaign starts.
    Subscription.objects.filter(pk=sub.pk).update(sending_suspended_at=None, payment_failed_at=None)
    assert not any(c.key == "payment" for c in checklist.checklist(campaign).checks)
    lifecycle.start_campaign(campaign)


@pytest.mark.promise("P4")
def test_a_start_that_leaves_the_credits_below_the_threshold_recharges_them(
    customer, account, newsletter, campaign, settings, django_capture_on_commit_callbacks
):
    """The engine's reservation at the start queues the recharge job once the start
    commits (billing.recharge); the test gateway's signed event pays it."""
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the start is what is tested, not sending
    pack = Offer.objects.create(
        kind=Offer.Kind.PACK, name="Pack", credits=1000, vat_treatment=VatTreatment.EXEMPT
    )
    Price.objects.create(offer=pack, currency="EUR", amount=Decimal("10.00"))
    kept = kept_on_test_gateway(customer, pack)
    turn_on(customer, kept, pack, threshold=1003)
    add_contacts(account, newsletter, 3)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the recharge job runs here, after the commit
    with django_capture_on_commit_callbacks(execute=False) as queued:
        lifecycle.start_campaign(campaign)
    assert available(account) == 1002
    assert not Order.objects.filter(recharge=True).exists()  # not before the commit
    # What the start queued for after its commit: its batches, and one recharge job.
    recharge_jobs = [cb for cb in queued if recharge.RUN in _job_names(cb)]
    assert len(recharge_jobs) == 1
    recharge_jobs[0]()
    (made,) = Order.objects.filter(recharge=True)
    assert made.status == Order.Status.PAID and available(account) == 2002


def _job_names(callback: Any) -> list[object]:
    """The task a `core.jobs.enqueue` callback queues (its closure holds the name)."""
    return [cell.cell_contents for cell in callback.__closure__ or ()]
