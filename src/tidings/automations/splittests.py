"""A/B tests (docs/automations.md). Variants of a campaign's subject, sender name or
content (2 to 4: A, the campaign, and B to D, copies of it the editor can change) are
each sent to an equal part of a random sample of its recipients; after the wait, the
winner by opens or clicks (what the account's tracking lets Tidings count, P26), or the
customer's choice, goes to everyone else. Variants of send time split every recipient
evenly, each part going out at its own time, with no winner: the report says which
time did better.

Nobody is mailed twice: the sample's (or each time's) contacts are fixed as the
variants' deliveries, and the send to the rest is every recipient but them (a
`Delivery` per (campaign, contact) as everywhere; a test decided twice sends once).

Every message goes through the campaign engine: each variant, and the send to the rest,
is a campaign of the account whose recipients are fixed here (not by its lists), then
started (`lifecycle.start_with_fixed_recipients`) or, for a send time, scheduled
(`lifecycle.schedule_with_fixed_recipients`: beat starts it as any scheduled campaign);
the checklist's blocking rules are applied before anything starts.

The report gives each variant's rate with its 95 % confidence interval and tests the
best against each other (`statistics`); the winner chosen by itself is the best rate
whether or not the difference is significant, and its note says so."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from tidings.accounts.models import User
from tidings.automations import statistics
from tidings.automations.models import SplitTest, Variant
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.core import clock
from tidings.core.locales import is_time_zone
from tidings.sending import checklist, lifecycle, recipients, reports
from tidings.sending.models import Delivery, SendingSettings
from tidings.staff import audit

T = SplitTest.Status
K = SplitTest.Kind
LABELS = "ABCD"
CHUNK = 2000
# How far ahead a send time may be.
MAX_SEND_AHEAD = timedelta(days=365)


class SplitTestError(ValueError):
    """Refused; the text says why (nothing was changed)."""


class SplitTestConflict(SplitTestError):
    """Refused because of the test's state (started, decided...), not its input."""


def _clean(texts: list[str] | tuple[str, ...]) -> list[str]:
    return [" ".join(t.split()) for t in texts if t.strip()]


def _other_values(
    kind: str, subjects: list[str], from_names: list[str], variants: int | None
) -> list[dict[str, Any]]:
    """What each of variants B to D changes in its copy of the campaign."""
    if kind == K.SUBJECT:
        if not 1 <= len(subjects) <= 3:
            raise SplitTestError(_("Give one to three other subjects."))
        return [{"subject": s} for s in subjects]
    if kind == K.FROM_NAME:
        if not 1 <= len(from_names) <= 3:
            raise SplitTestError(_("Give one to three other sender names."))
        if any(len(name) > 200 for name in from_names):
            raise SplitTestError(_("A sender name has at most 200 characters."))
        return [{"from_name": name} for name in from_names]
    if variants is None or not 2 <= variants <= 4:
        raise SplitTestError(_("A test has two to four variants."))
    return [{} for _ in range(variants - 1)]


def _send_times(send_times: list[datetime], moment: datetime) -> list[datetime]:
    if not 2 <= len(send_times) <= 4:
        raise SplitTestError(_("Give two to four send times."))
    if any(timezone.is_naive(t) for t in send_times):
        raise SplitTestError(_("Give the time with its time zone."))
    if any(t <= moment for t in send_times):
        raise SplitTestError(_("Every send time must be in the future."))
    if any(t > moment + MAX_SEND_AHEAD for t in send_times):
        raise SplitTestError(_("A send time is at most a year ahead."))
    if len(set(send_times)) < len(send_times):
        raise SplitTestError(_("The send times must differ."))
    return list(send_times)


def create_test(
    campaign: Campaign,
    *,
    kind: str = K.SUBJECT,
    subjects: list[str] | tuple[str, ...] = (),
    from_names: list[str] | tuple[str, ...] = (),
    variants: int | None = None,
    send_times: list[datetime] | tuple[datetime, ...] = (),
    time_zone: str = "UTC",
    test_percent: int = 20,
    metric: str = SplitTest.Metric.OPENS,
    wait_hours: int = 4,
    by: User | None,
) -> SplitTest:
    """An A/B test of a draft campaign: variant A is the campaign, B to D copies of it
    with another subject, another sender name, the same content to edit, or (a test of
    send time) the same message at another time; `time_zone` is the zone the times
    were chosen in, which the page shows them in."""
    if kind not in K.values:
        raise SplitTestError(_("Choose what is tested."))
    if metric not in SplitTest.Metric.values:
        raise SplitTestError(_("Choose how the winner is decided."))
    times: list[datetime] = []
    if kind == K.SEND_TIME:
        times = _send_times(list(send_times), clock.now())
        if not is_time_zone(time_zone):
            raise SplitTestError(_("Choose a time zone from the list."))
        if metric == SplitTest.Metric.MANUAL:
            raise SplitTestError(_("A test of send time compares opens or clicks."))
        others: list[dict[str, Any]] = [{} for _ in times[1:]]
        test_percent, wait_hours = 100, 0  # everyone, and no winner to wait for
    else:
        others = _other_values(kind, _clean(list(subjects)), _clean(list(from_names)), variants)
        if not 2 <= test_percent <= 50:
            raise SplitTestError(_("The test share is between 2 and 50 %."))
        if not 1 <= wait_hours <= 24 * 14:
            raise SplitTestError(_("The wait is between 1 hour and 14 days."))
    if not campaign.is_editable or campaign.status != Campaign.Status.DRAFT:
        raise SplitTestError(_("Only a draft campaign can be tested."))
    with transaction.atomic():
        if Variant.objects.filter(campaign=campaign).exists():
            # Variant A of a test, or one of its copies.
            raise SplitTestError(_("This campaign has an A/B test already."))
        test = SplitTest.objects.create(
            account=campaign.account,
            campaign=campaign,
            kind=kind,
            test_percent=test_percent,
            metric=metric,
            wait_hours=wait_hours,
            time_zone=time_zone if kind == K.SEND_TIME else "UTC",
        )
        Variant.objects.create(
            test=test, label="A", campaign=campaign, send_at=times[0] if times else None
        )
        for index, values in enumerate(others, start=1):
            label = LABELS[index]
            copy = campaigns.duplicate_campaign(campaign, by=by)
            try:
                campaigns.update_campaign(
                    copy, by=by, name=f"{campaign.name} ({label})"[:200], **values
                )
            except campaigns.CampaignError as error:
                raise SplitTestError(f"{label}: {error}") from None
            except ValidationError as error:
                raise SplitTestError(f"{label}: {' '.join(error.messages)}") from None
            Variant.objects.create(
                test=test, label=label, campaign=copy, send_at=times[index] if times else None
            )
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
    """Send each variant to its part of a random sample of the campaign's recipients;
    for a test of send time, split every recipient evenly and schedule each part."""
    moment = now or clock.now()
    variants = _variants(test)
    for variant in variants:
        try:
            checklist.refuse_unready(variant.campaign, confirmed_recipients=None, confirming=False)
        except checklist.NotReady as error:
            raise SplitTestError(f"{variant.label}: {error}") from None
    with transaction.atomic():
        locked = SplitTest.objects.select_for_update().get(pk=test.pk)
        if locked.status != T.DRAFT:
            raise SplitTestConflict(_("This A/B test has started already."))
        if Campaign.objects.filter(pk__in=[v.campaign_id for v in variants]).exclude(
            status=Campaign.Status.DRAFT
        ):
            # Sent or scheduled on its own meanwhile: its recipients may have it already.
            raise SplitTestConflict(_("Every variant must still be a draft."))
        if locked.kind == K.SEND_TIME:
            _split_everyone(locked, variants, moment)
        else:
            _send_to_sample(locked, variants, moment)
        locked.started_at = moment
        locked.save(update_fields=["status", "started_at", "decide_at"])
        audit.record("update", locked, by=by, fields=["status"], account_id=locked.account_id)
    return locked


def _send_to_sample(locked: SplitTest, variants: list[Variant], moment: datetime) -> None:
    everyone = list(recipients.recipients(locked.campaign).values_list("pk", flat=True))
    size = round(len(everyone) * locked.test_percent / 100)
    if size < len(variants) or size >= len(everyone):
        raise SplitTestError(_("Too few recipients for this test: %(n)s.") % {"n": len(everyone)})
    sample = random.SystemRandom().sample(everyone, size)
    for index, variant in enumerate(variants):
        share = sample[index :: len(variants)]
        Delivery.objects.bulk_create(
            [Delivery(campaign_id=variant.campaign_id, contact_id=c) for c in share],
            batch_size=CHUNK,
            ignore_conflicts=True,
        )
    _open([v.campaign_id for v in variants], moment)
    locked.status = T.TESTING
    locked.decide_at = moment + timedelta(hours=locked.wait_hours)


def _split_everyone(locked: SplitTest, variants: list[Variant], moment: datetime) -> None:
    """Every recipient now in exactly one part: read by id in chunks, each run of as
    many contacts as there are variants dealt to the variants in a random order, so the
    parts differ by one contact at most, with constant memory."""
    passed = [v.label for v in variants if v.send_at is None or v.send_at <= moment]
    if passed:
        raise SplitTestError(
            _("The send time of %(labels)s has passed: make a new test.")
            % {"labels": ", ".join(passed)}
        )
    draw = random.SystemRandom()
    order = list(range(len(variants)))
    ids = (
        recipients.recipients(locked.campaign)
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator(chunk_size=CHUNK)
    )
    batch: list[Delivery] = []
    total = 0
    for position, contact_id in enumerate(ids):
        slot = position % len(variants)
        if slot == 0:
            draw.shuffle(order)
        batch.append(Delivery(campaign_id=variants[order[slot]].campaign_id, contact_id=contact_id))
        total += 1
        if len(batch) >= CHUNK:
            Delivery.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    Delivery.objects.bulk_create(batch, ignore_conflicts=True)
    if total < len(variants):
        raise SplitTestError(_("Too few recipients for this test: %(n)s.") % {"n": total})
    zone = ZoneInfo(locked.time_zone)
    for variant in variants:
        assert variant.send_at is not None
        try:
            # In the test's zone, which the parts' campaigns then show their time in.
            when = variant.send_at.astimezone(zone)
            lifecycle.schedule_with_fixed_recipients(variant.campaign_id, when)
        except lifecycle.SendingError as error:
            raise SplitTestError(f"{variant.label}: {error}") from None
    locked.status = T.TIMED


# The report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantFigures:
    """One variant's figures. `counted` is the base of the rate: messages delivered
    whose opens and clicks may be counted (per-contact tracking, without those who
    objected); `successes` the messages opened (or clicked) among them. Under
    aggregate-only tracking `successes` counts events and `rate` is events per message:
    no interval nor test then."""

    label: str
    campaign: Campaign
    send_at: datetime | None
    recipients: int
    delivered: int
    counted: int
    opened: int
    clicked: int
    successes: int
    rate: float | None  # a share (0..1), or events per message under aggregate-only
    low: float | None
    high: float | None
    p_value: float | None  # against the best variant (None for the best itself)
    best: bool = False

    @property
    def significant(self) -> bool:
        return statistics.significant(self.p_value)

    def _percent(self, value: float | None) -> float | None:
        return None if value is None else 100 * value

    @property
    def rate_percent(self) -> float | None:
        return self._percent(self.rate)

    @property
    def low_percent(self) -> float | None:
        return self._percent(self.low)

    @property
    def high_percent(self) -> float | None:
        return self._percent(self.high)


@dataclass(frozen=True)
class Report:
    measure: str  # "opens" or "clicks"
    per_contact: bool
    variants: list[VariantFigures]
    best: str | None
    note: str  # what may be counted (P26)
    verdict: str  # what the figures say, "not significant" included


def _measure(test: SplitTest) -> str:
    if test.metric == SplitTest.Metric.CLICKS:
        return "clicks"
    if test.metric == SplitTest.Metric.MANUAL and not test.campaign.track_opens:
        return "clicks"
    return "opens"


def _grouped(condition: Q, ids: list[int]) -> dict[int, int]:
    """How many deliveries of each campaign meet `condition`."""
    return dict(
        Delivery.objects.filter(condition, campaign_id__in=ids)
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values_list("campaign_id", "n")
        .order_by()
    )


def report(test: SplitTest) -> Report:
    """Each variant's recipients, opens, clicks and rate by the test's measure with its
    95 % interval, the best one tested against the others, and what the account's
    tracking lets Tidings count (P26): per-contact tracking counts people (not those
    who objected, in neither the rate nor its base), aggregate-only counts events; a
    campaign that did not ask for the measure counts nothing."""
    variants = _variants(test)
    ids = [v.campaign_id for v in variants]
    rates = reports.key_rates([v.campaign for v in variants])
    per_contact = reports.tracking_mode(test.campaign) == SendingSettings.Tracking.PER_CONTACT
    measure = _measure(test)
    asked = test.campaign.track_clicks if measure == "clicks" else test.campaign.track_opens
    sizes = _grouped(Q(), ids)
    objected = _grouped(Q(sent_at__isnull=False, contact__allow_tracking=False), ids)
    raw = []
    for v in variants:
        found = rates.get(v.campaign_id) or {}
        delivered = found.get("delivered", 0)
        opened, clicked = found.get("opened", 0), found.get("clicked", 0)
        if per_contact:
            successes = opened if measure == "opens" else clicked
            counted = max(delivered - objected.get(v.campaign_id, 0), successes)
        else:
            opened, clicked = found.get("opens", 0), found.get("clicks", 0)
            successes = opened if measure == "opens" else clicked
            counted = delivered
        rate = successes / counted if asked and counted else None
        raw.append((v, delivered, counted, opened, clicked, successes, rate))
    scored = [(r[6], -i) for i, r in enumerate(raw) if r[6] is not None]
    best_index = -max(scored)[1] if scored else None
    figures = []
    for i, (v, delivered, counted, opened, clicked, successes, rate) in enumerate(raw):
        interval = (
            statistics.wilson_interval(successes, counted)
            if per_contact and rate is not None
            else None
        )
        p_value = None
        if per_contact and rate is not None and best_index is not None and i != best_index:
            b = raw[best_index]
            p_value = statistics.two_proportion_p_value(b[5], b[2], successes, counted)
        figures.append(
            VariantFigures(
                label=v.label, campaign=v.campaign, send_at=v.send_at,
                recipients=sizes.get(v.campaign_id, 0), delivered=delivered, counted=counted,
                opened=opened, clicked=clicked, successes=successes, rate=rate,
                low=interval[0] if interval else None, high=interval[1] if interval else None,
                p_value=p_value, best=i == best_index,
            )
        )  # fmt: skip
    best = raw[best_index][0].label if best_index is not None else None
    return Report(
        measure=measure,
        per_contact=per_contact,
        variants=figures,
        best=best,
        note=_tracking_note(
            test, asked=asked, per_contact=per_contact, objected=sum(objected.values())
        ),
        verdict=_verdict(figures, best, per_contact=per_contact, timed=test.kind == K.SEND_TIME),
    )


def _tracking_note(test: SplitTest, *, asked: bool, per_contact: bool, objected: int) -> str:
    if not asked and test.kind == K.SEND_TIME:
        # Everyone has it already: no winner is sent, whatever the figures.
        return _("The campaign does not ask for this measure: nothing can be compared.")
    if not asked:
        return _(
            "The campaign does not ask for this measure: nothing can be judged, so variant A "
            "is sent unless you choose another."
        )
    if per_contact:
        note = _("Judged on unique contacts; contacts who objected to tracking are not counted.")
        if objected:
            note += " " + ngettext(
                "%(n)s recipient objected: left out of the rates and their base.",
                "%(n)s recipients objected: left out of the rates and their base.",
                objected,
            ) % {"n": objected}
        return note
    return _(
        "Your account tracks in aggregate only: judged on counts of events, not people "
        "(someone who opens twice counts twice), with no confidence interval nor test."
    )


def _verdict(
    figures: list[VariantFigures], best: str | None, *, per_contact: bool, timed: bool = False
) -> str:
    """What the figures say. `timed`: a test of send time, which has no winner to send
    (everyone got one of the times), so nothing "would be sent"."""
    if best is None or not any(f.counted for f in figures):
        return _("Nothing to compare yet.")
    top = next(f for f in figures if f.best)
    level = [f.label for f in figures if f.rate is not None and f.rate == top.rate]
    if len(level) > 1 and timed:
        return _("Variants %(labels)s are level: nothing tells them apart yet.") % {
            "labels": ", ".join(level)
        }
    if len(level) > 1:
        # Not "A did best" when nothing tells them apart (0 % each, say).
        return _(
            "Variants %(labels)s are level: nothing tells them apart yet. Decided now, "
            "the first of them, %(label)s, would be sent."
        ) % {"labels": ", ".join(level), "label": level[0]}
    if not per_contact:
        return _(
            "Variant %(label)s has the most events per message; whether that is more than "
            "chance cannot be tested on counts of events."
        ) % {"label": best}
    unclear = [f.label for f in figures if not f.best and not f.significant]
    if not unclear:
        return _(
            "Variant %(label)s did best, and the difference is significant (95 %% confidence)."
        ) % {"label": best}
    return _(
        "Variant %(label)s did best, but the difference with %(others)s is not significant "
        "(95 %% confidence): it may be chance."
    ) % {"label": best, "others": ", ".join(unclear)}


def decide(
    test: SplitTest,
    *,
    label: str | None = None,
    by: User | None = None,
    now: datetime | None = None,
) -> SplitTest:
    """Send the winner (the best rate by the measure, or `label`) to every recipient
    the sample left out. Idempotent: a decided test is left as it is. The rule, when
    Tidings decides: the best rate, whether or not the difference is significant; a tie
    keeps the earlier variant; nothing to judge sends A."""
    moment = now or clock.now()
    if test.kind == K.SEND_TIME:
        raise SplitTestConflict(_("A test of send time has no winner: each part goes at its time."))
    variants = {v.label: v for v in _variants(test)}
    if label is not None and label not in variants:
        raise SplitTestError(_("No such variant."))
    figures = report(test)
    if label is None:
        label = figures.best or "A"
        note = figures.note
        unclear = [f for f in figures.variants if not f.best and not f.significant]
        if figures.best is not None and figures.per_contact and unclear:
            # Why this winner; what the figures are judged on is the report's own note,
            # which the page shows above them (not twice).
            note = _(
                "No clear winner: the difference is not significant, so the best rate was "
                "sent by the rule (a tie keeps the earlier variant)."
            )
    else:
        note = _("Chosen by you.")
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
        _open([rest.pk], moment)
        locked.status, locked.decided_at = T.DECIDED, moment
        locked.winner, locked.rest = winner.campaign, rest
        locked.note = note[:500]
        locked.save(update_fields=["status", "decided_at", "winner", "rest", "note"])
        audit.record(
            "update", locked, by=by, fields=["status", "winner"], account_id=locked.account_id
        )
    return locked


def decide_due(now: datetime | None = None) -> int:
    """Decide the tests whose wait is over (not those whose customer chooses)."""
    moment = now or clock.now()
    due = SplitTest.objects.filter(status=T.TESTING, decide_at__lte=moment).exclude(
        metric=SplitTest.Metric.MANUAL
    )
    decided = 0
    for test in due:
        try:
            decide(test, now=moment)
        except SplitTestError as error:
            # Credits ran out during the test: it waits, saying why, and is decided
            # at the next pass once they come.
            SplitTest.objects.filter(pk=test.pk).update(note=str(error)[:500])
            continue
        decided += 1
    return decided
