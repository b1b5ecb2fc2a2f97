"""A campaign's report: counts and rates, a time series whose buckets suit its span,
clicks per link, figures by receiving domain, and the same as CSV, XLSX and PDF.

The counts are `tracking.series` and `tracking.summarise`, the one place that decides
what was sent, delivered, opened and clicked; this module divides and arranges them.
Nothing here counts a contact's own behaviour beyond what the account's tracking mode
keeps (P26): under aggregate-only tracking there are no per-contact events, so opens and
clicks by domain are not computed and the page says so (`tracking_notes`).

Rates: delivered and bounced per message sent; opened, clicked, unsubscribed and
complained per message delivered; click-to-open is clicked per opened. Opened and
clicked are messages (people), never events, so no rate passes 100 %: under
aggregate-only tracking there are only events, shown as counts without a rate. A rate
whose denominator is 0 is None (shown as "—"), never a division by zero.
"""

from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncMinute
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tidings.campaigns.models import Campaign
from tidings.core.spreadsheets import SINKS
from tidings.sending import tracking
from tidings.sending.models import (
    BounceRecord,
    CampaignStat,
    Delivery,
    LinkClick,
    SendingSettings,
    TrackingEvent,
)

D = Delivery.Status
KINDS = ("sent", "open", "click", "bounce", "unsubscribe", "complaint")
KIND_LABELS = {
    "sent": gettext_lazy("Sent"),
    "open": gettext_lazy("Opens"),
    "click": gettext_lazy("Clicks"),
    "bounce": gettext_lazy("Bounces"),
    "unsubscribe": gettext_lazy("Unsubscribes"),
    "complaint": gettext_lazy("Complaints"),
}
# At most this many points on the time chart: the bucket is the smallest that fits.
MAX_POINTS = 60
BUCKETS: tuple[tuple[timedelta, Any], ...] = (
    (timedelta(minutes=1), gettext_lazy("1 minute")),
    (timedelta(minutes=5), gettext_lazy("5 minutes")),
    (timedelta(minutes=15), gettext_lazy("15 minutes")),
    (timedelta(hours=1), gettext_lazy("1 hour")),
    (timedelta(hours=3), gettext_lazy("3 hours")),
    (timedelta(hours=6), gettext_lazy("6 hours")),
    (timedelta(days=1), gettext_lazy("1 day")),
    (timedelta(days=7), gettext_lazy("1 week")),
)
DOMAINS_SHOWN = 12
EXPORT_FORMATS = ("csv", "xlsx", "pdf")


def rate(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, or None when `whole` is 0."""
    if whole <= 0:
        return None
    return 100.0 * part / whole


@dataclass
class Figure:
    key: str
    label: str
    count: int | None
    rate: float | None
    of: str  # what the rate is a share of
    count_only: bool = False  # shown as its count (no rate is meaningful)


@dataclass
class Series:
    bucket: timedelta
    bucket_label: str
    starts: list[datetime]
    labels: list[str]
    lines: dict[str, list[int]]


@dataclass
class DomainRow:
    domain: str
    messages: int
    delivered: int
    bounced: int
    failed: int
    complained: int
    opened: int | None
    clicked: int | None

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.messages)

    @property
    def bounce_rate(self) -> float | None:
        return rate(self.bounced, self.messages)

    @property
    def open_rate(self) -> float | None:
        return None if self.opened is None else rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return None if self.clicked is None else rate(self.clicked, self.delivered)


@dataclass
class Report:
    campaign: Campaign
    summary: dict[str, int]
    figures: list[Figure]
    series: Series
    links: list[tuple[str, int]]
    domains: list[DomainRow]
    per_contact: bool
    notes: list[str] = field(default_factory=list)
    subject: str = ""  # the subject as people read it (readable_subject)


_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
_BLOCK = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.S)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def readable_subject(subject: str) -> str:
    """The subject with its template tags as words a reader understands: the report
    shows "News for you, [first name]", not `{{ contact.first_name | default(…) }}`
    (each tag's last name before any filter; statements dropped)."""

    def word(match: re.Match[str]) -> str:
        names = _NAME.findall(match.group(1).split("|")[0])
        return f"[{names[-1].replace('_', ' ')}]" if names else ""

    return " ".join(_TAG.sub(word, _BLOCK.sub("", subject)).split())


def opened_and_clicked(engaged: int, unique_opened: int, unique_clicked: int) -> tuple[int, int]:
    """Messages opened and clicked, people not events (the first of each message): a
    click counts as an open too, since it needs the message open. The report's figures
    and the campaign list's rates both count this way."""
    return max(engaged, unique_opened, unique_clicked), unique_clicked


def figures(summary: dict[str, int], *, per_contact: bool = True) -> list[Figure]:
    """The key figures. Every rate is a share of people or messages, so none exceeds
    100 %: opened and clicked count messages (the first open or click of each), known
    only from per-contact events; a click counts as an open too (it needs the message
    open, while many programs block the pixel), so click-to-open is at most 100 %. Under
    aggregate-only tracking Tidings knows events, not people: opens and clicks are shown
    as counts, with no rate (tracking_notes says so)."""
    sent, delivered = summary["sent"], summary["delivered"]
    by_sent, by_delivered, by_opened = _("of sent"), _("of delivered"), _("of opened")
    if per_contact:
        opened, clicked = opened_and_clicked(
            summary.get("engaged", 0), summary["unique_opened"], summary["unique_clicked"]
        )
        engagement = [
            Figure("opened", _("Opened"), opened, rate(opened, delivered), by_delivered),
            Figure("clicked", _("Clicked"), clicked, rate(clicked, delivered), by_delivered),
            Figure("click_to_open", _("Click-to-open"), None, rate(clicked, opened), by_opened),
        ]
    else:
        events = _("events, no rate")
        engagement = [
            Figure("opened", _("Opens"), summary["opens"], None, events, count_only=True),
            Figure("clicked", _("Clicks"), summary["clicks"], None, events, count_only=True),
            Figure("click_to_open", _("Click-to-open"), None, None, _("not known")),
        ]
    return [
        Figure("sent", _("Sent"), sent, None, "", count_only=True),
        Figure("delivered", _("Delivered"), delivered, rate(delivered, sent), by_sent),
        Figure(
            "bounced", _("Bounced"), summary["bounced"], rate(summary["bounced"], sent), by_sent
        ),
        *engagement,
        Figure(
            "unsubscribed",
            _("Unsubscribed"),
            summary["unsubscribed"],
            rate(summary["unsubscribed"], delivered),
            by_delivered,
        ),
        Figure(
            "complained",
            _("Complained"),
            summary["complained"],
            rate(summary["complained"], delivered),
            by_delivered,
        ),
    ]


def engaged(campaign_ids: list[int]) -> dict[int, int]:
    """For each campaign, the messages opened or clicked (a click implies an open),
    from its per-contact events."""
    return dict(
        TrackingEvent.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(n=Count("delivery_id", distinct=True))
        .values_list("campaign_id", "n")
        .order_by()
    )


# --- the time series --------------------------------------------------------------------


def bucket_for(span: timedelta) -> tuple[timedelta, str]:
    """The smallest bucket that shows `span` in at most MAX_POINTS points."""
    for size, label in BUCKETS:
        if span <= size * (MAX_POINTS - 1):
            return size, str(label)
    size, label = BUCKETS[-1]
    return size, str(label)


def _floor(moment: datetime, size: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if size >= timedelta(days=7):
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // size) * size


def _label(moment: datetime, size: timedelta, span: timedelta) -> str:
    if size >= timedelta(days=1):
        return f"{moment:%d %b}"
    if span < timedelta(days=1) and moment.date() == (moment + span).date():
        return f"{moment:%H:%M}"
    return f"{moment:%d %b %H:%M}"


def time_series(found: dict[str, dict[datetime, int]]) -> Series:
    """The counts in buckets sized for their span: minutes for a campaign read within an
    hour, days for one read over a month. Every bucket between the first and the last is
    present, so the x axis is time at an even pace."""
    moments = [m for kind in KINDS for m in found.get(kind, {})]
    if not moments:
        size, label = bucket_for(timedelta(0))
        return Series(size, label, [], [], {kind: [] for kind in KINDS})
    first, last = min(moments), max(moments)
    size, label = bucket_for(last - first)
    start, end = _floor(first, size), _floor(last, size)
    starts = []
    at = start
    while at <= end:
        starts.append(at)
        at += size
    index = {moment: i for i, moment in enumerate(starts)}
    lines = {kind: [0] * len(starts) for kind in KINDS}
    for kind in KINDS:
        for moment, n in found.get(kind, {}).items():
            lines[kind][index[_floor(moment, size)]] += n
    span = end - start
    return Series(size, label, starts, [_label(s, size, span) for s in starts], lines)


# --- clicks per link and figures per domain -----------------------------------------------


def clicks_per_link(campaign: Campaign) -> list[tuple[str, int]]:
    return list(
        LinkClick.objects.filter(campaign=campaign)
        .order_by("-clicks", "url")
        .values_list("url", "clicks")
    )


def _domain_of(path: str) -> Any:
    return Lower(Substr(path, StrIndex(path, Value("@")) + 1))


def by_domain(campaign: Campaign, *, per_contact: bool) -> list[DomainRow]:
    """Messages, deliveries, bounces, failures and complaints by the recipients' domain
    (from the deliveries, at report time); unique opens and clicks by domain only under
    per-contact tracking (from its events, while they are kept), else None."""
    rows: dict[str, DomainRow] = {}
    for row in (
        Delivery.objects.filter(campaign=campaign, status__in=[D.SENT, D.BOUNCED, D.FAILED])
        .annotate(domain=_domain_of("contact__email"))
        .values("domain")
        .annotate(
            messages=Count("pk"),
            delivered=Count("pk", filter=Q(status=D.SENT)),
            bounced=Count("pk", filter=Q(status=D.BOUNCED)),
            failed=Count("pk", filter=Q(status=D.FAILED)),
        )
        .order_by()
    ):
        rows[row["domain"]] = DomainRow(
            row["domain"],
            row["messages"],
            row["delivered"],
            row["bounced"],
            row["failed"],
            0,
            0 if per_contact else None,
            0 if per_contact else None,
        )
    for domain, n in (
        BounceRecord.objects.filter(
            campaign=campaign, kind=BounceRecord.Kind.COMPLAINT, contact__isnull=False
        )
        .annotate(domain=_domain_of("contact__email"))
        .values("domain")
        .annotate(n=Count("contact_id", distinct=True))
        .values_list("domain", "n")
        .order_by()
    ):
        if domain in rows:
            rows[domain].complained = n
    if per_contact:
        for domain, kind, n in (
            TrackingEvent.objects.filter(campaign=campaign, first=True)
            .annotate(domain=_domain_of("delivery__contact__email"))
            .values("domain", "kind")
            .annotate(n=Count("pk"))
            .values_list("domain", "kind", "n")
            .order_by()
        ):
            if domain in rows:
                if kind == TrackingEvent.Kind.OPEN:
                    rows[domain].opened = n
                else:
                    rows[domain].clicked = n
    ordered = sorted(rows.values(), key=lambda r: (-r.messages, r.domain))
    if len(ordered) <= DOMAINS_SHOWN:
        return ordered
    shown, rest = ordered[: DOMAINS_SHOWN - 1], ordered[DOMAINS_SHOWN - 1 :]
    other = DomainRow(
        domain=_("other domains (%(n)s)") % {"n": len(rest)},
        messages=sum(r.messages for r in rest),
        delivered=sum(r.delivered for r in rest),
        bounced=sum(r.bounced for r in rest),
        failed=sum(r.failed for r in rest),
        complained=sum(r.complained for r in rest),
        opened=sum(r.opened or 0 for r in rest) if per_contact else None,
        clicked=sum(r.clicked or 0 for r in rest) if per_contact else None,
    )
    return [*shown, other]


# --- what the tracking mode leaves out -----------------------------------------------


def tracking_mode(campaign: Campaign) -> str:
    mode = (
        SendingSettings.objects.filter(account_id=campaign.account_id)
        .values_list("tracking", flat=True)
        .first()
    )
    return mode or SendingSettings.Tracking.AGGREGATE


def tracking_notes(campaign: Campaign, *, per_contact: bool) -> list[str]:
    """What the report does not count, and why (P26: the mode decides what is known)."""
    notes = []
    if not campaign.track_opens and not campaign.track_clicks:
        notes.append(
            _(
                "Opens and clicks are not counted: this campaign did not ask for them, so "
                "its messages carried no tracking."
            )
        )
    elif not campaign.track_opens:
        notes.append(_("Opens are not counted: this campaign did not ask for them."))
    elif not campaign.track_clicks:
        notes.append(_("Clicks are not counted: this campaign did not ask for them."))
    if per_contact:
        objected = Delivery.objects.filter(campaign=campaign, contact__allow_tracking=False).count()
        if objected:
            notes.append(
                ngettext(
                    "%(n)s recipient objected to tracking: their opens and clicks are not "
                    "counted at all.",
                    "%(n)s recipients objected to tracking: their opens and clicks are not "
                    "counted at all.",
                    objected,
                )
                % {"n": objected}
            )
    else:
        notes.append(
            _(
                "Your account tracks in aggregate only: Tidings counts opens and clicks, never "
                "who. They are shown as counts of events, without a rate: a contact who opens "
                "twice counts twice, so a share of the messages delivered would mislead (it "
                "could pass 100 %). Click-to-open, and opens and clicks by domain, are not "
                "counted."
            )
        )
    if per_contact and (campaign.track_opens or campaign.track_clicks):
        notes.append(
            _(
                "Opened and clicked count messages, not events: the first open or click of "
                "each. A click counts as an open too, since it needs the message open."
            )
        )
    if campaign.track_opens:
        notes.append(
            _(
                "Many mail programs block the pixel that counts an open, and some open every "
                "message for the reader: opens are an estimate."
            )
        )
    return notes


def build(campaign: Campaign) -> Report:
    """The whole report of a campaign."""
    found = tracking.series(campaign, trunc=TruncMinute)
    summary = tracking.summarise(found)
    summary["engaged"] = engaged([campaign.pk]).get(campaign.pk, 0)
    per_contact = tracking_mode(campaign) == SendingSettings.Tracking.PER_CONTACT
    return Report(
        campaign=campaign,
        summary=summary,
        figures=figures(summary, per_contact=per_contact),
        series=time_series(found),
        links=clicks_per_link(campaign),
        domains=by_domain(campaign, per_contact=per_contact),
        per_contact=per_contact,
        notes=tracking_notes(campaign, per_contact=per_contact),
        subject=readable_subject(campaign.subject),
    )


def chart_data(report: Report) -> dict[str, Any]:
    """What the page's chart script draws (passed with json_script, no inline script)."""
    return {
        "labels": report.series.labels,
        "bucket": report.series.bucket_label,
        "datasets": [
            {"key": kind, "label": str(KIND_LABELS[kind]), "data": report.series.lines[kind]}
            for kind in KINDS
        ],
    }


# --- key rates of many campaigns (the campaign list, the dashboard) ------------------------


def key_rates(campaigns: list[Campaign]) -> dict[int, dict[str, Any]]:
    """For each campaign that has started or sent something: sent, and its open, click
    and bounce rates, from three grouped queries for all of them. An automation's step
    message is never "started" (`lifecycle.open_for_steps`) but sends from the day it
    opens, and keeps what it sent once its step is removed; a campaign cancelled before
    it started sent nothing and has no figures."""
    ids = [c.pk for c in campaigns if c.status != Campaign.Status.DRAFT]
    if not ids:
        return {}
    found: dict[int, dict[str, dict[Any, int]]] = {
        i: defaultdict(lambda: defaultdict(int)) for i in ids
    }
    for campaign_id, n in (
        Delivery.objects.filter(campaign_id__in=ids, sent_at__isnull=False)
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values_list("campaign_id", "n")
        .order_by()
    ):
        found[campaign_id]["sent"][None] += n
    # Never started, it has figures once it sent something (the count just read).
    unstarted = {c.pk for c in campaigns if c.started_at is None}
    found = {i: f for i, f in found.items() if i not in unstarted or "sent" in f}
    ids = list(found)
    if not ids:
        return {}
    for campaign_id, kind, n in (
        CampaignStat.objects.filter(campaign_id__in=ids)
        .values("campaign_id", "kind")
        .annotate(n=Sum("count"))
        .values_list("campaign_id", "kind", "n")
        .order_by()
    ):
        found[campaign_id][kind][None] += n
    for campaign_id, kind, n, firsts in (
        TrackingEvent.objects.filter(campaign_id__in=ids)
        .values("campaign_id", "kind")
        .annotate(n=Count("pk"), firsts=Count("pk", filter=Q(first=True)))
        .values_list("campaign_id", "kind", "n", "firsts")
        .order_by()
    ):
        found[campaign_id][kind][None] += n
        found[campaign_id][f"unique_{kind}"][None] += firsts
    rates = {}
    opened_or_clicked = engaged(ids)
    per_contact = tracking_mode(campaigns[0]) == SendingSettings.Tracking.PER_CONTACT
    for campaign_id, series in found.items():
        s = tracking.summarise(series)
        # People, not events (as figures()): no rate from aggregate-only counts.
        opened, clicked = opened_and_clicked(
            opened_or_clicked.get(campaign_id, 0), s["unique_opened"], s["unique_clicked"]
        )
        known = per_contact or opened > 0
        rates[campaign_id] = {
            "sent": s["sent"],
            "open_rate": rate(opened, s["delivered"]) if known else None,
            "click_rate": rate(clicked, s["delivered"]) if known else None,
            "bounce_rate": rate(s["bounced"], s["sent"]),
            "unsubscribe_rate": rate(s["unsubscribed"], s["delivered"]),
            # Events per message delivered, whoever made them: not a share of people
            # (it may pass 1), but two variants of one A/B test compare on it under
            # aggregate-only tracking.
            "opens_per_message": rate(s["opened"], s["delivered"]),
            "clicks_per_message": rate(s["clicked"], s["delivered"]),
            # The counts behind the rates (an A/B test's intervals need them).
            "delivered": s["delivered"],
            "opened": opened if known else 0,
            "clicked": clicked if known else 0,
            "opens": s["opens"],
            "clicks": s["clicks"],
        }
    return rates


# --- exports ------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def rows(report: Report) -> list[list[Any]]:
    """The report as one table (section, item, measure, count, rate in %): what the CSV
    and the XLSX hold."""
    out: list[list[Any]] = []
    for f in report.figures:
        out.append(
            [_("summary"), f.label, f.of, "" if f.count is None else f.count, _percent(f.rate)]
        )
    for url, clicks in report.links:
        out.append([_("clicks per link"), url, _("clicks"), clicks, ""])
    for d in report.domains:
        domain = d.domain
        out.append([_("by domain"), domain, _("messages"), d.messages, ""])
        out.append([_("by domain"), domain, _("delivered"), d.delivered, _percent(d.delivery_rate)])
        out.append([_("by domain"), domain, _("bounced"), d.bounced, _percent(d.bounce_rate)])
        out.append([_("by domain"), domain, _("complained"), d.complained, ""])
        if d.opened is not None:
            out.append([_("by domain"), domain, _("opened"), d.opened, _percent(d.open_rate)])
        if d.clicked is not None:
            out.append([_("by domain"), domain, _("clicked"), d.clicked, _percent(d.click_rate)])
    for i, start in enumerate(report.series.starts):
        for kind in KINDS:
            n = report.series.lines[kind][i]
            if n:
                out.append(
                    [_("over time"), f"{start:%Y-%m-%d %H:%M} UTC", str(KIND_LABELS[kind]), n, ""]
                )
    for note in report.notes:
        out.append([_("not counted"), note, "", "", ""])
    return out


def _header() -> list[str]:
    return [_("section"), _("item"), _("measure"), _("count"), _("rate (%)")]


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # The PDF is made from Tidings's own template: it fetches nothing, anywhere.
    raise ValueError(f"the report's PDF fetches nothing ({url})")


def export(report: Report, fmt: str) -> tuple[bytes, str, str]:
    """The report as a file: (content, content type, file name)."""
    name = f"report-{report.campaign.uuid.hex[:8]}"
    if fmt == "pdf":
        # A heavy import (cairo, pango), for this export only.
        from weasyprint import CSS, HTML

        chart = tracking.svg_chart(
            report.series.starts,
            report.series.lines,
            title=report.campaign.name,
            labels=report.series.labels,
        )
        html = render_to_string(
            "sending/report_pdf.html",
            {"report": report, "chart": chart, "made_at": timezone.now()},
        )
        style = CSS(string=render_to_string("sending/report_pdf.css"), url_fetcher=_refuse_fetch)
        pdf = HTML(string=html, url_fetcher=_refuse_fetch).write_pdf(stylesheets=[style])
        return pdf, "application/pdf", f"{name}.pdf"
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"no export as {fmt}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.{fmt}"
        sink = SINKS[fmt](path, _header(), title=_("Report"))
        sink.write(rows(report))
        sink.close()
        content = path.read_bytes()
    types = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    return content, types[fmt], f"{name}.{fmt}"
