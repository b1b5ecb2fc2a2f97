"""A/B tests (docs/automations.md): 2 to 4 subjects of one campaign, each sent to an
equal part of a random sample of its recipients; after the wait, the winner by opens or
clicks (what the account's tracking lets Tidings count, P26), or the customer's choice,
goes to everyone else. Nobody is mailed twice: the sample's contacts are fixed as the
variants' deliveries, and the send to the rest is every recipient but them (a
`Delivery` per (campaign, contact) as everywhere; a test decided twice sends once).

Every message goes through the campaign engine: each variant, and the send to the rest,
is a campaign of the account whose recipients are fixed here (not by its lists), then
dispatched; the checklist's blocking rules are applied before anything starts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.translation import gettext as _

from tidings.automations.models import SplitTest, Variant
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.core import clock
from tidings.sending import checklist, lifecycle, recipients, reports
from tidings.sending.models import Delivery, SendingSettings
from tidings.staff import audit

if TYPE_CHECKING:
    from tidings.accounts.models import User

T = SplitTest.Status
LABELS = "ABCD"
CHUNK = 2000


class SplitTestError(ValueError):
    """Refused; the text says why (nothing was changed)."""


def create_test(
    campaign: Campaign,
    *,
    subjects: list[str],
    test_percent: int,
    metric: str,
    wait_hours: int,
    by: User,
) -> SplitTest:
    """An A/B test of a draft campaign: variant A is the campaign, B to D copies of it
    with the other `subjects`."""
    subjects = [" ".join(s.split()) for s in subjects if s.strip()]
    if not 1 <= len(subjects) <= 3:
        raise SplitTestError(_("Give one to three other subjects."))
    if not 2 <= test_percent <= 50:
        raise SplitTestError(_("The test share is between 2 and 50 %."))
    if not 1 <= wait_hours <= 24 * 14:
        raise SplitTestError(_("The wait is between 1 hour and 14 days."))
    if metric not in SplitTest.Metric.values:
        raise SplitTestError(_("Choose how the winner is decided."))
    if not campaign.is_editable or campaign.status != Campaign.Status.DRAFT:
        raise SplitTestError(_("Only a draft campaign can be tested."))
    with transaction.atomic():
        if SplitTest.objects.filter(campaign=campaign).exists():
            raise SplitTestError(_("This campaign has an A/B test already."))
        test = SplitTest.objects.create(
            account=campaign.account,
            campaign=campaign,
            test_percent=test_percent,
            metric=metric,
            wait_hours=wait_hours,
        )
        Variant.objects.create(test=test, label="A", campaign=campaign)
        for label, subject in zip(LABELS[1:], subjects, strict=False):
            copy = campaigns.duplicate_campaign(campaign, by=by)
            try:
                campaigns.update_campaign(
                    copy, by=by, subject=subject, name=f"{campaign.name} ({label})"[:200]
                )
            except campaigns.CampaignError as error:
                raise SplitTestError(f"{label}: {error}") from None
            Variant.objects.create(test=test, label=label, campaign=copy)
        audit.record("create", test, by=by, account_id=test.account_id)
    return test


def _variants(test: SplitTest) -> list[Variant]:
    return list(test.variants.select_related("campaign", "campaign__account").order_by("label"))


def _open(campaign_ids: list[int], now: datetime) -> None:
    """Campaigns whose recipients were fixed here start as any campaign does (credits
    reserved per delivery), dispatched after the commit; the engine finishes each when
    its deliveries are done."""
    try:
        lifecycle.start_with_fixed_recipients(campaign_ids, now)
    except lifecycle.SendingError as error:
        raise SplitTestError(str(error)) from None


def start_test(test: SplitTest, *, by: User | None, now: datetime | None = None) -> SplitTest:
    """Send each variant to its part of a random sample of the campaign's recipients."""
    now = now or clock.now()
    variants = _variants(test)
    for variant in variants:
        try:
            checklist.refuse_unready(variant.campaign, confirmed_recipients=None, confirming=False)
        except checklist.NotReady as error:
            raise SplitTestError(f"{variant.label}: {error}") from None
    with transaction.atomic():
        locked = SplitTest.objects.select_for_update().get(pk=test.pk)
        if locked.status != T.DRAFT:
            raise SplitTestError(_("This A/B test has started already."))
        if Campaign.objects.filter(pk__in=[v.campaign_id for v in variants]).exclude(
            status=Campaign.Status.DRAFT
        ):
            # Sent or scheduled on its own meanwhile: its recipients may have it already.
            raise SplitTestError(_("Every variant must still be a draft."))
        everyone = list(recipients.recipients(locked.campaign).values_list("pk", flat=True))
        size = round(len(everyone) * locked.test_percent / 100)
        if size < len(variants) or size >= len(everyone):
            raise SplitTestError(
                _("Too few recipients for this test: %(n)s.") % {"n": len(everyone)}
            )
        sample = random.SystemRandom().sample(everyone, size)
        for index, variant in enumerate(variants):
            share = sample[index :: len(variants)]
            Delivery.objects.bulk_create(
                [Delivery(campaign_id=variant.campaign_id, contact_id=c) for c in share],
                batch_size=CHUNK,
                ignore_conflicts=True,
            )
        _open([v.campaign_id for v in variants], now)
        locked.status, locked.started_at = T.TESTING, now
        locked.decide_at = now + timedelta(hours=locked.wait_hours)
        locked.save(update_fields=["status", "started_at", "decide_at"])
        audit.record("update", locked, by=by, fields=["status"], account_id=locked.account_id)
    return locked


def judged(test: SplitTest) -> tuple[dict[str, float | None], str]:
    """Each variant's rate by the test's metric, and what it means under the account's
    tracking (P26): per-contact tracking counts people (not those who objected),
    aggregate-only counts events; a campaign that did not ask for it counts nothing."""
    variants = _variants(test)
    rates = reports.key_rates([v.campaign for v in variants])
    base = test.campaign
    per_contact = reports.tracking_mode(base) == SendingSettings.Tracking.PER_CONTACT
    clicks = test.metric == SplitTest.Metric.CLICKS
    if per_contact:
        key = "click_rate" if clicks else "open_rate"
    else:  # events, not people: no rate, but the variants compare on events per message
        key = "clicks_per_message" if clicks else "opens_per_message"
    asked = base.track_clicks if test.metric == SplitTest.Metric.CLICKS else base.track_opens
    found = {
        v.label: (rates.get(v.campaign_id) or {}).get(key) if asked else None for v in variants
    }
    if test.metric == SplitTest.Metric.MANUAL:
        return found, _("You choose the winner.")
    if not asked:
        return found, _(
            "The campaign does not ask for this measure: nothing can be judged, so variant A "
            "is sent unless you choose another."
        )
    if per_contact:
        return found, _(
            "Judged on unique contacts; contacts who objected to tracking are not counted."
        )
    return found, _(
        "Your account tracks in aggregate only: judged on counts of events, not people "
        "(someone who opens twice counts twice)."
    )


def decide(
    test: SplitTest,
    *,
    label: str | None = None,
    by: User | None = None,
    now: datetime | None = None,
) -> SplitTest:
    """Send the winner (the best by the metric, or `label`) to every recipient the
    sample left out. Idempotent: a decided test is left as it is."""
    now = now or clock.now()
    variants = {v.label: v for v in _variants(test)}
    if label is not None and label not in variants:
        raise SplitTestError(_("No such variant."))
    rates, note = judged(test)
    if label is None:
        scored = [(rate, name) for name, rate in rates.items() if rate is not None]
        # The best rate; a tie, or nothing to judge, keeps the first (A).
        label = max(scored, key=lambda pair: (pair[0], -ord(pair[1])))[1] if scored else "A"
    winner = variants[label]
    with transaction.atomic():
        locked = SplitTest.objects.select_for_update().get(pk=test.pk)
        if locked.status != T.TESTING:
            return locked
        rest = Campaign.objects.create(
            account=winner.campaign.account,
            **{
                field: getattr(winner.campaign, field)
                for field in campaigns.CAMPAIGN_FIELDS
                if field not in ("scheduled_at", "archived")
            },
        )
        rest.name = _("%(name)s (winner %(label)s, to the rest)") % {
            "name": test.campaign.name,
            "label": label,
        }
        rest.save(update_fields=["name"])
        rest.lists.set(test.campaign.lists.all())
        rest.segments.set(test.campaign.segments.all())
        tested = Delivery.objects.filter(campaign_id__in=[v.campaign_id for v in variants.values()])
        others = (
            recipients.recipients(test.campaign)
            .exclude(pk__in=tested.values("contact_id"))
            .values_list("pk", flat=True)
            .iterator(chunk_size=CHUNK)
        )
        batch: list[Delivery] = []
        for contact_id in others:
            batch.append(Delivery(campaign=rest, contact_id=contact_id))
            if len(batch) >= CHUNK:
                Delivery.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
        Delivery.objects.bulk_create(batch, ignore_conflicts=True)
        _open([rest.pk], now)
        locked.status, locked.decided_at = T.DECIDED, now
        locked.winner, locked.rest = winner.campaign, rest
        locked.note = (note if by is None else _("Chosen by you.") + " " + note)[:500]
        locked.save(update_fields=["status", "decided_at", "winner", "rest", "note"])
        audit.record(
            "update", locked, by=by, fields=["status", "winner"], account_id=locked.account_id
        )
    return locked


def decide_due(now: datetime | None = None) -> int:
    """Decide the tests whose wait is over (not those whose customer chooses)."""
    now = now or clock.now()
    due = SplitTest.objects.filter(status=T.TESTING, decide_at__lte=now).exclude(
        metric=SplitTest.Metric.MANUAL
    )
    decided = 0
    for test in due:
        try:
            decide(test, now=now)
        except SplitTestError as error:
            # Credits ran out during the test: it waits, saying why, and is decided
            # at the next pass once they come.
            SplitTest.objects.filter(pk=test.pk).update(note=str(error)[:500])
            continue
        decided += 1
    return decided
