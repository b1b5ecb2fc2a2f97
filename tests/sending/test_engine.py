"""The campaign pipeline, run eagerly against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.audience import services as audience
from tidings.audience.models import Contact, Subscription
from tidings.campaigns.models import Campaign
from tidings.outbox.models import OutboxMessage
from tidings.sending import dispatcher, engine, lifecycle, recipients, tasks
from tidings.sending.models import Delivery

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def envelope_counts(sink) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for message in sink.messages:
        for to in message["X-Envelope-To"].split(", "):
            counts[to] = counts.get(to, 0) + 1
    return counts


def test_sending_a_campaign_mails_every_confirmed_contact_once(
    account, newsletter, relay, campaign, smtp_server
):
    add_contacts(account, newsletter, 7)
    audience.add_contact(account, "pending@example.net", lists=[newsletter], confirmed=False)
    assert lifecycle.start_campaign(campaign) == 7
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    counts = envelope_counts(smtp_server)
    assert counts == {f"reader{i}@example.net": 1 for i in range(7)}
    message = smtp_server.to("reader3@example.net")[0]
    assert message["Subject"] == "News for Reader"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_starting_twice_or_redelivering_a_batch_sends_nobody_twice(
    account, newsletter, relay, campaign, smtp_server
):
    add_contacts(account, newsletter, 5)
    lifecycle.start_campaign(campaign)
    with pytest.raises(lifecycle.SendingError):
        lifecycle.start_campaign(campaign)
    first, last = Delivery.objects.order_by("pk").values_list("pk", flat=True)[::4]
    # The broker hands the same batch to a worker again: nothing is queued any more.
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(Campaign.Status.SENDING))
    result = engine.send_batch(campaign.pk, first, last)
    assert result.sent == 0
    assert recipients.materialise(campaign) == 0
    assert all(n == 1 for n in envelope_counts(smtp_server).values())
    assert len(smtp_server.messages) == 5


@pytest.mark.promise("P21")
def test_a_contact_who_unsubscribes_mid_campaign_gets_nothing_more(
    account, newsletter, relay, campaign, smtp_server
):
    contacts = add_contacts(account, newsletter, 4)
    with pytest.MonkeyPatch.context():
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
        recipients.materialise(campaign)
    # After the recipients are fixed, one leaves and one is erased-and-suppressed.
    audience.unsubscribe(contacts[1])
    audience.suppress(account, contacts[2].email, "unsubscribed")
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    engine.send_batch(campaign.pk, ids[0], ids[-1])
    assert set(envelope_counts(smtp_server)) == {contacts[0].email, contacts[3].email}
    skipped = Delivery.objects.filter(status="skipped").values_list("contact_id", flat=True)
    assert set(skipped) == {contacts[1].pk, contacts[2].pk}


def test_a_paused_campaign_sends_nothing_until_resumed(
    account, newsletter, relay, campaign, smtp_server, django_capture_on_commit_callbacks
):
    add_contacts(account, newsletter, 3)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    recipients.materialise(campaign)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert engine.send_batch(campaign.pk, ids[0], ids[-1]).sent == 0
    assert smtp_server.messages == []
    lifecycle.resume_campaign(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert len(smtp_server.messages) == 3


def test_cancelling_leaves_the_rest_unsent(account, newsletter, relay, campaign, smtp_server):
    add_contacts(account, newsletter, 3)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    recipients.materialise(campaign)
    lifecycle.cancel_campaign(campaign)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"skipped"}
    with pytest.raises(lifecycle.SendingError):
        lifecycle.resume_campaign(campaign)
    assert smtp_server.messages == []


def test_a_scheduled_campaign_starts_when_due(account, newsletter, relay, campaign, smtp_server):
    add_contacts(account, newsletter, 2)
    when = timezone.now() + timezone.timedelta(hours=1)
    lifecycle.schedule_campaign(campaign, when)
    assert lifecycle.start_due_campaigns() == []
    assert lifecycle.start_due_campaigns(now=when + timezone.timedelta(seconds=1)) == [campaign.pk]
    assert len(smtp_server.messages) == 2


def test_a_stalled_claim_is_recovered_at_most_once(
    account, newsletter, relay, campaign, smtp_server
):
    add_contacts(account, newsletter, 5)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    recipients.materialise(campaign)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    # A worker claimed three, then died before any answer came back.
    claimed = engine.claim(campaign, ids[0], ids[-1], "dead-worker", limit=3)
    assert claimed == ids[:3]
    later = timezone.now() + timezone.timedelta(hours=1)
    outcome = engine.recover_stalled(now=later)
    assert outcome.unknown == 1 and outcome.requeued == 2
    assert Delivery.objects.get(pk=ids[0]).status == "unknown"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert set(envelope_counts(smtp_server)) == set(
        Contact.objects.filter(deliveries__pk__in=ids[1:]).values_list("email", flat=True)
    )


def test_after_a_database_restart_no_stalled_delivery_is_retried(
    account, newsletter, relay, campaign, smtp_server, monkeypatch
):
    # "Sent" marks do not wait for the disk: a database crash may lose the last ones, so
    # every claim older than the restart is ambiguous as a whole.
    add_contacts(account, newsletter, 4)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    recipients.materialise(campaign)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    engine.claim(campaign, ids[0], ids[-1], "worker-before-the-crash", limit=3)
    later = timezone.now() + timezone.timedelta(hours=1)
    monkeypatch.setattr(
        engine, "database_started_at", lambda: later - timezone.timedelta(minutes=5)
    )
    outcome = engine.recover_stalled(now=later)
    assert outcome.unknown == 3 and outcome.requeued == 0
    assert len(smtp_server.messages) == 1  # only the unclaimed fourth


def test_without_any_relay_mail_lands_in_the_local_outbox(account, newsletter, campaign, settings):

    settings.EMAIL_DELIVERY = "outbox"
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    rows = OutboxMessage.objects.order_by("recipients")
    assert [r.recipients for r in rows] == ["reader0@example.net", "reader1@example.net"]
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in rows[0].raw
    assert rows[0].subject == "News for Reader"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.fixture
def ten_in_batches_of_three(account, newsletter, campaign, settings):  # type: ignore[no-untyped-def]
    """A sending campaign with ten queued deliveries and batches of three."""
    settings.SENDING = {**settings.SENDING, "batch_size": 3}
    add_contacts(account, newsletter, 10)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    recipients.materialise(campaign)


def test_dispatch_queues_consecutive_ranges_once_in_one_pass(
    campaign, ten_in_batches_of_three, monkeypatch
):
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(
        dispatcher, "_queue_batch", lambda task, cid, lo, hi: queued.append((lo, hi))
    )
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert dispatcher.dispatch(campaign.pk) == 4
    assert queued == [(ids[0], ids[2]), (ids[3], ids[5]), (ids[6], ids[8]), (ids[9], ids[9])]
    assert not Delivery.objects.filter(dispatched_at__isnull=True).exists()
    # Carried by live tasks: a second pass (the recovery sweep) queues nothing.
    assert dispatcher.dispatch(campaign.pk) == 0 and len(queued) == 4


def test_a_dispatch_step_queues_its_batches_then_a_dispatch_of_the_rest(
    campaign, ten_in_batches_of_three, monkeypatch
):
    queued: list[tuple[int, int]] = []
    rest: list[int] = []
    monkeypatch.setattr(
        dispatcher, "_queue_batch", lambda task, cid, lo, hi: queued.append((lo, hi))
    )
    monkeypatch.setattr(dispatcher, "_queue_rest", lambda task, cid, *, after: rest.append(after))
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    # A worker running one task at a time sends these two batches before dispatching more.
    assert dispatcher.dispatch(campaign.pk, limit=2) == 2
    assert queued == [(ids[0], ids[2]), (ids[3], ids[5])]
    assert rest == [ids[6] - 1]
    assert Delivery.objects.filter(dispatched_at__isnull=True).count() == 4
    assert dispatcher.dispatch(campaign.pk, after=rest[0], limit=2) == 2
    assert queued[2:] == [(ids[6], ids[8]), (ids[9], ids[9])]
    assert len(rest) == 1  # nothing left: no further dispatch task


def test_a_large_audience_gets_its_first_batch_before_the_rest_is_fixed(
    account, newsletter, relay, campaign, smtp_server, settings, monkeypatch
):

    settings.SENDING = {**settings.SENDING, "batch_size": 3}
    add_contacts(account, newsletter, 10)
    lost: list[int] = []  # the broker loses the task that fixes the rest
    monkeypatch.setattr(tasks.materialise_campaign, "delay", lambda cid: lost.append(cid))
    assert lifecycle.start_campaign(campaign) == 3
    assert lost == [campaign.pk]
    assert len(smtp_server.messages) == 3
    campaign.refresh_from_db()
    # Nothing queued any more, but the campaign is not done while recipients are missing.
    assert campaign.status == Campaign.Status.SENDING and campaign.recipients_fixed_at is None
    assert engine.progress(campaign)["recipients_fixed"] is False
    monkeypatch.undo()
    engine.recover_stalled(now=timezone.now() + timezone.timedelta(hours=1))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert envelope_counts(smtp_server) == {f"reader{i}@example.net": 1 for i in range(10)}


def test_fixing_the_rest_of_a_cancelled_campaign_adds_nobody(
    account, newsletter, relay, campaign, smtp_server, settings, monkeypatch
):

    settings.SENDING = {**settings.SENDING, "batch_size": 3}
    add_contacts(account, newsletter, 10)
    monkeypatch.setattr(tasks.materialise_campaign, "delay", lambda cid: None)
    monkeypatch.setattr(dispatcher, "_queue_batch", lambda task, cid, lo, hi: None)
    lifecycle.start_campaign(campaign)
    lifecycle.cancel_campaign(campaign)
    assert lifecycle.materialise_rest(campaign.pk) == 0
    assert Delivery.objects.filter(campaign=campaign).count() == 3
    assert smtp_server.messages == []


def _just_imported(account, newsletter) -> None:  # type: ignore[no-untyped-def]
    """More new contacts on the list than the planner's statistics know of."""
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"n{i}@example.net", basis_at=now)
        for i in range(recipients.STALE_STATISTICS + 1)
    )
    Subscription.objects.bulk_create(
        Subscription(contact=c, mailing_list=newsletter, confirmed_at=now) for c in contacts
    )


def _last_analysed() -> object:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'audience_contact'"
        )
        return cursor.fetchone()[0]


# Both the first batch's recipients (`start_campaign`) and the rest: with stale
# statistics the first 500 took minutes at 100,000 (the planner's nested loop).
# PostgreSQL's statistics count committed rows only: transaction=True.
@pytest.mark.postgres  # PostgreSQL's statistics
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("limit", [500, None])
def test_a_campaign_to_a_list_just_imported_is_materialised_with_fresh_statistics(
    account, newsletter, campaign, limit
):
    _just_imported(account, newsletter)
    before = _last_analysed()
    expected = recipients.STALE_STATISTICS + 1 if limit is None else limit
    assert recipients.materialise(campaign, limit=limit) == expected
    assert _last_analysed() != before


# The send page's checklist and its confirmation count the recipients first: with
# stale statistics that count took 30 s at 20,000 contacts.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_recipients_of_a_list_just_imported_are_counted_with_fresh_statistics(
    account, newsletter, campaign
):
    _just_imported(account, newsletter)
    before = _last_analysed()
    assert recipients.count(campaign) == recipients.STALE_STATISTICS + 1
    assert _last_analysed() != before
