"""Opens, clicks, unsubscribes: the links in each message, and what they record.

Privacy first: nothing is tracked for a contact who objected (allow_tracking=False);
an account on aggregate-only tracking gets links that do not say who the recipient is
(the token holds the campaign only) and counts without any per-contact row; per-contact
events are kept TIDINGS_TRACKING_DAYS, then folded into counts and deleted.

A click link redirects only while it is bound to its campaign (`click_destination`): the
campaign still exists, stopped sending less than TIDINGS_CLICK_LINK_DAYS ago (or sends
still), and its content names the link's site. A signed link is thus no redirect on the
operator's domain that a customer could hand out forever to any address they like.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy
from markupsafe import escape

from tidings.accounts.models import Account
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.core import baseurl
from tidings.sending import tokens
from tidings.sending.limits import shared_redis
from tidings.sending.models import (
    CampaignStat,
    Delivery,
    LinkClick,
    SendingSettings,
    TrackingEvent,
    TrackingStreamMark,
)

HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'>\s]+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def absolute(path: str) -> str:
    return baseurl.absolute(path)


@cache
def _path_around_token(name: str) -> tuple[str, str]:
    before, _, after = reverse(f"sending:{name}", args=["TOKEN"]).partition("TOKEN")
    return before, after


def link(name: str, token: str) -> str:
    """The absolute URL of a token link (reverse() once, not per message; the base URL
    is a setting, read at each call)."""
    before, after = _path_around_token(name)
    return absolute(before + token + after)


def unsubscribe_url(contact: Contact, campaign_id: int | None = None) -> str:
    return unsubscribe_url_for(contact.uuid.hex, campaign_id)


def unsubscribe_url_for(contact_uuid: str, campaign_id: int | None = None) -> str:
    return link("unsubscribe", tokens.unsubscribe_token(contact_uuid, campaign_id))


def instrument(
    html: str, *, campaign: Campaign, delivery_id: int | None, skip: Iterable[str] = ()
) -> str:
    """Click links and the open pixel, as the campaign asks for them. `delivery_id` is
    None under aggregate-only tracking."""
    skipped = set(skip)
    if campaign.track_clicks:

        def rewrite(match: re.Match[str]) -> str:
            url = html_lib.unescape(match.group(3))
            if url in skipped:
                return match.group(0)
            token = tokens.click_token(campaign.pk, delivery_id, url)
            url = html_lib.escape(link("click", token))
            return f"{match.group(1)}{match.group(2)}{url}{match.group(2)}"

        html = HREF.sub(rewrite, html)
    if campaign.track_opens:
        token = tokens.open_token(campaign.pk, delivery_id)
        pixel = (
            f'<img src="{html_lib.escape(link("open", token))}" '
            'width="1" height="1" alt="" style="display:block;border:0">'
        )
        html = _before_body_end(html, pixel)
    return html


def add_footer(
    html: str,
    text: str,
    *,
    unsubscribe_url: str | None,
    postal_address: str = "",
    in_html: bool = True,
    in_text: bool = True,
) -> tuple[str, str]:
    """What every campaign message must carry and its layout left out: the unsubscribe
    link (None when the layout prints it) and the sender's postal address (`in_html`,
    `in_text`: whether it must be added there; `shows_postal_address` decides it once
    per campaign)."""
    html_parts, text_parts = [], []
    if unsubscribe_url:
        link = html_lib.escape(unsubscribe_url)
        html_parts.append(
            gettext(
                'You receive this because you subscribed. <a href="%(link)s">Unsubscribe</a> '
                "with one click, at any time."
            )
            % {"link": link}
        )
        text_parts.append(gettext("Unsubscribe: %(url)s") % {"url": unsubscribe_url})
    if postal_address and in_html:
        html_parts.append(str(escape(postal_address)))
    if postal_address and in_text:
        text_parts.append(postal_address)
    if html_parts:
        footer = '<p style="font-size:12px;color:#555;margin-top:24px">{}</p>'
        html = _before_body_end(html, footer.format("<br>".join(html_parts)))
    if text_parts:
        text = f"{text.rstrip()}\n\n--\n" + "\n".join(text_parts) + "\n"
    return html, text


def shows_postal_address(html: str, text: str, postal_address: str) -> tuple[bool, bool]:
    """Whether the address must be added to the HTML and to the text part of a message
    like this one (decided once per campaign, on a sample message: it is the layout,
    not a contact, that shows it)."""
    if not postal_address:
        return False, False
    return (
        str(escape(postal_address)) not in html,
        postal_address not in " ".join(text.split()),
    )


def _before_body_end(html: str, snippet: str) -> str:
    matches = list(_BODY_END.finditer(html))
    if not matches:
        return html + snippet
    at = matches[-1].start()
    return html[:at] + snippet + html[at:]


# Recording ---------------------------------------------------------------------------------


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def count(
    campaign_id: int,
    kind: str,
    n: int = 1,
    *,
    at: datetime | None = None,
    if_campaign_exists: bool = False,
) -> None:
    """Add `n` to the campaign's counter of `kind` for the hour of `at`. With
    `if_campaign_exists`, nothing is counted for a campaign that is gone, in the same
    statement (an open or a click of a deleted campaign's message: one round trip, the
    hottest path of a big send)."""
    if n <= 0:
        return
    table = CampaignStat._meta.db_table
    values = "VALUES (%s, %s, %s, %s)"
    params: list[Any] = [campaign_id, kind, hour_of(at or timezone.now()), n]
    if if_campaign_exists:
        campaigns = Campaign._meta.db_table
        values = f"SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM {campaigns} WHERE id = %s)"  # noqa: S608
        params.append(campaign_id)
    with connection.cursor() as cursor:
        cursor.execute(  # the table names are the models' own
            f"INSERT INTO {table} (campaign_id, kind, hour, count) {values} "
            "ON CONFLICT (campaign_id, kind, hour) DO UPDATE SET count = "
            f"{table}.count + excluded.count",
            params,
        )


# How long a click link's check is kept in Redis (its campaign's deletion forgets it at
# once: `forget_click_checks`).
CLICK_CHECK_SECONDS = 60


def click_destination(token: tokens.TrackingToken) -> str | None:
    """Where a click link leads, or None when it no longer may: its campaign is gone,
    stopped sending more than TIDINGS_CLICK_LINK_DAYS ago, or its content (body and
    layout) does not name the link's site (scheme and host; a path may hold a contact's
    value). With Redis, the answer is kept a minute, per campaign, under a hash of the
    link (which may hold a contact's value): the moment the link expires, checked
    against the clock here, or 0 when it leads nowhere."""
    stream = shared_redis()
    if stream is None:
        return _destination(token)[0]
    key = _click_checks(token.campaign_id)
    field = hashlib.blake2b(token.url.encode(), digest_size=16).hexdigest()
    known = stream.hget(key, field)
    if known is not None:
        until = float(known)
        return token.url if until and timezone.now().timestamp() < until else None
    destination, expiry = _destination(token)
    pipe = stream.pipeline(transaction=False)
    pipe.hset(key, field, expiry.timestamp() if destination and expiry else 0)
    pipe.expire(key, CLICK_CHECK_SECONDS, nx=True)
    pipe.execute()
    return destination


def _click_checks(campaign_id: int) -> str:
    return f"tidings:click-checks:{campaign_id}"


def forget_click_checks(campaign_id: int) -> None:
    """The campaign is deleted: its links stop redirecting now, not a minute later."""
    stream = shared_redis()
    if stream is not None:
        stream.delete(_click_checks(campaign_id))


def _destination(token: tokens.TrackingToken) -> tuple[str | None, datetime | None]:
    """`click_destination` read from the database, and when the link expires."""
    row = (
        Campaign.objects.filter(pk=token.campaign_id)
        .values("body", "layout__html", "finished_at")
        .first()
    )
    if row is None:
        return None, None
    # Its links live for their days after the campaign stopped sending: from its end
    # once it ended (sent or cancelled, the model's constraint), from today while it
    # may still send (sending, paused, an automation's step message open for its step).
    ended = row["finished_at"] or timezone.now()
    until = ended + timedelta(days=int(settings.SENDING["click_link_days"]))
    if timezone.now() > until:
        return None, None
    parts = urlsplit(token.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None, until
    content = html_lib.unescape(row["body"] + (row["layout__html"] or "")).lower()
    site = f"{parts.scheme}://{parts.netloc}".lower()
    if token.url.lower() in content or _names_site(content, site):
        return token.url, until
    return None, until


def link_label(url: str, content: str) -> str:
    """The link a click is counted under: its address when the campaign's content holds
    it as such, else its site only (the path or query may hold a contact's value)."""
    if url.lower() in content:
        return url[:2000]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"[:2000]


def campaign_content(campaign_id: int) -> str | None:
    """The campaign's body and layout as `link_label` reads them; None once it is gone."""
    row = Campaign.objects.filter(pk=campaign_id).values("body", "layout__html").first()
    if row is None:
        return None
    return html_lib.unescape(row["body"] + (row["layout__html"] or "")).lower()


def _count_links(campaign_id: int, urls: Counter[str]) -> None:
    """More clicks on the campaign's links (no identity), each under its label; nothing
    once the campaign is gone."""
    content = campaign_content(campaign_id)
    if content is None:
        return
    labels: Counter[str] = Counter()
    for url, n in urls.items():
        labels[link_label(url, content)] += n
    table = LinkClick._meta.db_table
    with connection.cursor() as cursor:
        for label, n in labels.items():
            cursor.execute(  # the table name is the model's own
                f"INSERT INTO {table} (campaign_id, url, clicks) VALUES (%s, %s, %s) "  # noqa: S608
                f"ON CONFLICT (campaign_id, url) DO UPDATE SET clicks = {table}.clicks + "
                "excluded.clicks",
                [campaign_id, label, n],
            )


def _names_site(content: str, site: str) -> bool:
    """Whether `content` holds a link to `site` itself: followed by a path, a query, a
    fragment or the end of the address (so https://a.example is not https://a.example.evil)."""
    at = content.find(site)
    while at != -1:
        after = content[at + len(site) : at + len(site) + 1]
        if after == "" or after in "/?#\"'<> )]\n\t":
            return True
        at = content.find(site, at + 1)
    return False


def engagement_events(
    account: Account, kind: str, before: datetime | None, after: datetime | None
) -> QuerySet[TrackingEvent]:
    """The per-contact events of `kind` of the account's mail, with the contact's id as
    `contact_id`: what segments read as "opened" and "clicked" (registered in ready())."""
    events = TrackingEvent.objects.filter(campaign__account=account, kind=kind)
    if before is not None:
        events = events.filter(at__lt=before)
    if after is not None:
        events = events.filter(at__gt=after)
    return events.alias(contact_id=F("delivery__contact_id"))


@dataclass(frozen=True)
class Event:
    """An open, a click or a one-click unsubscription to record: what its link said, and
    when it happened."""

    campaign_id: int
    kind: str
    at: datetime
    # None when the link names its campaign only (aggregate tracking, an unsubscription).
    delivery_id: int | None = None
    url: str = ""


def record(token: tokens.TrackingToken, kind: str) -> None:
    """An open or a click happened: written now (`note` queues it when it may)."""
    record_events([Event(token.campaign_id, kind, timezone.now(), token.delivery_id, token.url)])


def record_events(events: Iterable[Event]) -> None:
    """Write opens, clicks and unsubscriptions, in as few statements as they allow: every
    rule of what is recorded is here, for one request's event (`record`) as for the
    stream's batches (`drain`). An event whose campaign is gone is dropped. A link that
    names a delivery is recorded on it only while the account tracks per contact and the
    contact allows it (P26); a contact who objected is not counted at all, and under
    aggregate-only tracking the event is a count without identity."""
    counts: Counter[tuple[int, str, datetime]] = Counter()
    clicked: Counter[tuple[int, str]] = Counter()
    personal: list[tuple[Event, int]] = []
    events = list(events)
    known = _deliveries({e.delivery_id for e in events if e.delivery_id is not None})
    for event in events:
        if event.delivery_id is not None:
            found = known.get(event.delivery_id)
            if found is None or found[0] != event.campaign_id or not found[1]:
                continue  # another campaign's delivery, gone, or its contact objected
            if found[2]:
                personal.append((event, event.delivery_id))
            else:
                counts[(event.campaign_id, event.kind, hour_of(event.at))] += 1
        else:
            counts[(event.campaign_id, event.kind, hour_of(event.at))] += 1
        if event.kind == "click" and event.url:
            clicked[(event.campaign_id, event.url)] += 1
    for (campaign_id, kind, hour), n in counts.items():
        count(campaign_id, kind, n, at=hour, if_campaign_exists=True)
    by_campaign: dict[int, Counter[str]] = defaultdict(Counter)
    for (campaign_id, url), n in clicked.items():
        by_campaign[campaign_id][url] += n
    for campaign_id, urls in by_campaign.items():
        _count_links(campaign_id, urls)
    if personal:
        _write_personal(personal)


def _deliveries(ids: set[int]) -> dict[int, tuple[int, bool, bool]]:
    """Per delivery: its campaign, whether its contact allows tracking, and whether its
    account tracks per contact (two statements)."""
    if not ids:
        return {}
    rows = Delivery.objects.filter(pk__in=ids).values_list(
        "pk", "campaign_id", "contact__allow_tracking", "campaign__account_id"
    )
    found = {
        pk: (campaign_id, allowed, account_id) for pk, campaign_id, allowed, account_id in rows
    }
    per_contact = (
        set(
            SendingSettings.objects.filter(
                account_id__in={a for _, _, a in found.values()},
                tracking=SendingSettings.Tracking.PER_CONTACT,
            ).values_list("account_id", flat=True)
        )
        if found
        else set()
    )
    return {pk: (c, allowed, a in per_contact) for pk, (c, allowed, a) in found.items()}


def _write_personal(events: list[tuple[Event, int]]) -> None:
    """Per-contact events, each marked first when its delivery had none of its kind."""
    seen = set(
        TrackingEvent.objects.filter(
            delivery_id__in={d for _, d in events}, kind__in={e.kind for e, _ in events}
        )
        .values_list("delivery_id", "kind")
        .distinct()
    )
    rows = []
    for event, delivery_id in events:
        rows.append(
            TrackingEvent(
                campaign_id=event.campaign_id,
                delivery_id=delivery_id,
                kind=event.kind,
                url=event.url[:2000],
                first=(delivery_id, event.kind) not in seen,
                at=event.at,
            )
        )
        seen.add((delivery_id, event.kind))
    TrackingEvent.objects.bulk_create(rows)


# The stream: opens and clicks recorded outside the request -----------------------------

STREAM = "tidings:tracking"
GROUP = "recorders"
# One consumer name: drains take turns (the mark's row lock), and each starts with the
# entries a killed one read but did not acknowledge.
CONSUMER = "recorder"
BATCH = 2000


def _stream() -> redis.Redis | None:
    return shared_redis() if settings.SENDING["tracking_stream"] else None


def note(token: tokens.TrackingToken | None, kind: str, *, campaign_id: int | None = None) -> None:
    """An open, a click (`token`) or a one-click unsubscription of a campaign
    (`campaign_id`) happened: one XADD to the stream when there is one (`drain` writes
    it, by the same rules), else written now. The entry's id is its time."""
    if token is not None:
        campaign_id = token.campaign_id
    assert campaign_id is not None
    stream = _stream()
    if stream is None:
        if token is None:
            count(campaign_id, kind, if_campaign_exists=True)
        else:
            record(token, kind)
        return
    fields: dict[Any, Any] = {"c": campaign_id, "k": kind}
    if token is not None and token.delivery_id is not None:
        fields["d"] = token.delivery_id
    if token is not None and token.url:
        fields["u"] = token.url
    stream.xadd(STREAM, fields)


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> Event | None:
    """An entry as an event; None if it is not one of ours (skipped, acknowledged)."""
    try:
        kind = fields[b"k"].decode()
        if kind not in ("open", "click", "unsubscribe"):
            return None
        ms = int(entry_id.split(b"-")[0])
        delivery = fields.get(b"d")
        return Event(
            campaign_id=int(fields[b"c"]),
            kind=kind,
            at=datetime.fromtimestamp(ms / 1000, tz=UTC),
            delivery_id=int(delivery) if delivery is not None else None,
            url=fields.get(b"u", b"").decode(),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def create_group(stream: redis.Redis) -> None:
    """The recorders' group, reading the stream from its start (once)."""
    try:
        stream.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def take(stream: redis.Redis, batch: int = BATCH) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The next entries to write: those read before and not acknowledged (a recorder
    died), else new ones. They stay pending until `acknowledge`."""
    for start in ("0", ">"):
        while True:
            answer: Any = stream.xreadgroup(GROUP, CONSUMER, {STREAM: start}, count=batch)
            entries: list[tuple[bytes, dict[bytes, bytes]]] = answer[0][1] if answer else []
            # An entry deleted while pending comes back without its fields: nothing to write.
            if gone := [entry_id for entry_id, fields in entries if not fields]:
                stream.xack(STREAM, GROUP, *gone)
            if kept := [(entry_id, fields) for entry_id, fields in entries if fields]:
                return kept
            if not gone:
                break
    return []


def write_next(stream: redis.Redis, batch: int = BATCH) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Take the next entries and write their events, moving the mark past them, in one
    transaction that holds the mark's lock from the read on (recorders take turns, so a
    later batch is never committed before an earlier one). Entries at or below the mark
    were written by a recorder killed before it could acknowledge them: skipped. Returns
    the entries, to acknowledge once committed."""
    TrackingStreamMark.objects.get_or_create(stream=STREAM)
    with transaction.atomic():
        mark = TrackingStreamMark.objects.select_for_update().get(stream=STREAM)
        entries = take(stream, batch)
        done = _order(mark.last_id)
        fresh = [(i, f) for i, f in entries if _order(i.decode()) > done]
        if fresh:
            record_events(e for i, f in fresh if (e := _event(i, f)) is not None)
            mark.last_id = max((i.decode() for i, _ in fresh), key=_order)
            mark.save(update_fields=["last_id"])
    return entries


def acknowledge(stream: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    """The entries are written: out of the group's pending list and of the stream."""
    if entries:
        ids = [entry_id for entry_id, _ in entries]
        pipe = stream.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()


def drain(*, batch: int = BATCH) -> int:
    """Write what the stream holds, batch after batch, until it is empty; the entries
    handled. Safe to run at any time and to kill at any point: an entry is acknowledged
    only after its events are committed, and the mark keeps a commit from being written
    twice."""
    stream = _stream()
    if stream is None:
        return 0
    create_group(stream)
    handled = 0
    while entries := write_next(stream, batch):
        acknowledge(stream, entries)
        handled += len(entries)
    return handled


def stream_length() -> int:
    """Entries not yet written (0 without a stream)."""
    stream = _stream()
    return int(stream.xlen(STREAM)) if stream is not None else 0


def fold(events: QuerySet[TrackingEvent]) -> None:
    """Turn per-contact events into anonymous counts (before they are deleted)."""
    rows = (
        events.annotate(h=TruncHour("at"))
        .values("campaign_id", "kind", "h")
        .annotate(n=Count("pk"), firsts=Count("pk", filter=Q(first=True)))
    )
    for row in rows:
        count(row["campaign_id"], row["kind"], row["n"], at=row["h"])
        count(row["campaign_id"], f"unique_{row['kind']}", row["firsts"], at=row["h"])


def expired_events(now: datetime) -> QuerySet[TrackingEvent]:
    cutoff = now - timedelta(days=int(settings.SENDING["tracking_days"]))
    return TrackingEvent.objects.filter(at__lt=cutoff)


# The report --------------------------------------------------------------------------------


def series(campaign: Campaign, trunc: Any = TruncHour) -> dict[str, dict[datetime, int]]:
    """Every count of the campaign by kind and moment (`trunc` of it: hours by default;
    counts kept without identity are per hour whatever `trunc` says): messages sent,
    opens, clicks, unique ones, bounces, unsubscribes, complaints."""
    found: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Delivery.objects.filter(campaign=campaign, sent_at__isnull=False)
        .annotate(h=trunc("sent_at"))
        .values("h")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        found["sent"][row["h"]] += row["n"]
    for kind, hour, n in CampaignStat.objects.filter(campaign=campaign).values_list(
        "kind", "hour", "count"
    ):
        found[kind][hour] += n
    live = TrackingEvent.objects.filter(campaign=campaign)
    for row in (
        live.annotate(h=trunc("at"))
        .values("kind", "h")
        .annotate(n=Count("pk"), firsts=Count("pk", filter=Q(first=True)))
        .order_by()
    ):
        found[row["kind"]][row["h"]] += row["n"]
        found[f"unique_{row['kind']}"][row["h"]] += row["firsts"]
    return found


def summarise(found: dict[str, dict[datetime, int]]) -> dict[str, int]:
    """The campaign's totals from its `series`."""
    totals = {kind: sum(values.values()) for kind, values in found.items()}
    sent = totals.get("sent", 0)
    bounced = totals.get("bounce", 0)
    return {
        "sent": sent,
        "delivered": max(0, sent - bounced),
        "bounced": bounced,
        "opened": totals.get("unique_open") or totals.get("open", 0),
        "opens": totals.get("open", 0),
        "clicked": totals.get("unique_click") or totals.get("click", 0),
        "clicks": totals.get("click", 0),
        # People, not events: the first open and click of each message, known only from
        # per-contact events while they are kept (the rates read these, never events).
        "unique_opened": totals.get("unique_open", 0),
        "unique_clicked": totals.get("unique_click", 0),
        "unsubscribed": totals.get("unsubscribe", 0),
        "complained": totals.get("complaint", 0),
    }


def report(campaign: Campaign) -> dict[str, Any]:
    """Totals and hourly series for the campaign report."""
    found = series(campaign)
    summary = summarise(found)
    hours = sorted({h for values in found.values() for h in values})
    if hours:
        start, end = hours[0], hours[-1]
        hours = []
        while start <= end and len(hours) < 24 * 14:
            hours.append(start)
            start += timedelta(hours=1)
    lines = {
        kind: [found[kind].get(h, 0) for h in hours]
        for kind in ("sent", "open", "click", "bounce", "unsubscribe", "complaint")
    }
    return {"summary": summary, "hours": hours, "lines": lines}


COLOURS = {
    "sent": "#1f5fa8",
    "open": "#2e7d32",
    "click": "#b35c00",
    "bounce": "#b00020",
    "unsubscribe": "#6a1b9a",
    "complaint": "#000000",
}


KIND_LABELS = {
    "sent": gettext_lazy("sent"),
    "open": gettext_lazy("opens"),
    "click": gettext_lazy("clicks"),
    "bounce": gettext_lazy("bounces"),
    "unsubscribe": gettext_lazy("unsubscribes"),
    "complaint": gettext_lazy("complaints"),
}


def svg_chart(
    hours: list[datetime],
    lines: dict[str, list[int]],
    *,
    title: str,
    labels: list[str] | None = None,
) -> str:
    """A line chart as inline SVG (no script): one line per kind, time along x (labelled
    by hour, or by `labels`, one per point)."""
    if labels is None:
        labels = [date_format(hour, "j M H:00") for hour in hours]
    width, height, pad = 640, 240, 36
    peak = max([1, *[v for values in lines.values() for v in values]])
    n = max(1, len(hours) - 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / n if len(hours) > 1 else 0.5)

    def y(v: int) -> float:
        return height - pad - (height - 2 * pad) * v / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">{html_lib.escape(title)}</title>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
        f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end" font-size="10">{peak}</text>',
        f'<text x="{pad - 4}" y="{height - pad}" text-anchor="end" font-size="10">0</text>',
    ]
    if len(hours) == 1:
        parts.append(
            f'<text x="{x(0):.1f}" y="{height - pad + 14}" font-size="10" '
            f'text-anchor="middle">{html_lib.escape(labels[0])}</text>'
        )
    elif hours:
        parts.append(
            f'<text x="{pad}" y="{height - pad + 14}" font-size="10">'
            f"{html_lib.escape(labels[0])}</text>"
        )
        parts.append(
            f'<text x="{width - pad}" y="{height - pad + 14}" font-size="10" '
            f'text-anchor="end">{html_lib.escape(labels[-1])}</text>'
        )
    legend_x = pad
    for kind, values in lines.items():
        colour = COLOURS.get(kind, "#333")
        if values and any(values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
            # A line needs two hours; a campaign sent within one hour is a dot each.
            parts.extend(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
                for i, v in enumerate(values)
                if v
            )
        parts.append(
            f'<rect x="{legend_x}" y="8" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="17" font-size="11">'
            f"{html_lib.escape(str(KIND_LABELS.get(kind, kind)))}</text>"
        )
        legend_x += 98
    parts.append("</svg>")
    return "".join(parts)


def stat_total(campaign: Campaign, kind: str) -> int:
    return int(
        CampaignStat.objects.filter(campaign=campaign, kind=kind).aggregate(n=Sum("count"))["n"]
        or 0
    )
