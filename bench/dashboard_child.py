"""The dashboard benchmark's side in Django (bench/dashboard.py runs it as a child
process): Django is configured on the bench database before anything of Tidings is
imported. Prints the timings as JSON; bench/dashboard.py prints them.

    python bench/dashboard_child.py N
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from dashboard import DELIVERIES, REPEAT  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.db.models.functions import TruncDate  # noqa: E402
from django.utils import timezone  # noqa: E402
from export_contacts_child import ensure_audience  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience import growth  # noqa: E402
from tidings.audience.models import ListGrowth, MailingList, Subscription  # noqa: E402
from tidings.campaigns.models import Campaign  # noqa: E402
from tidings.sending import dashboard, reports  # noqa: E402
from tidings.sending.models import Delivery, SendingSettings  # noqa: E402

# What `timed` measured, in order: [label, median, min, max] (ms).
TIMED: list[list[Any]] = []


def timed(label: str, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        work()
        times.append((time.perf_counter() - t) * 1000)
    median = statistics.median(times)
    TIMED.append([label, median, min(times), max(times)])
    return median


def ensure_campaign(account_id: int) -> int:
    """A campaign sent to the account's first 100,000 contacts over an hour: 2% bounced,
    1% failed, 30% opened and 5% clicked (per-contact tracking)."""
    SendingSettings.objects.update_or_create(
        account_id=account_id, defaults={"tracking": "contact"}
    )
    campaign = Campaign.objects.filter(account_id=account_id, name="Report bench").first()
    if campaign and Delivery.objects.filter(campaign=campaign).count() == DELIVERIES:
        return campaign.pk
    if campaign:
        campaign.delete()
    campaign = Campaign.objects.create(
        account_id=account_id,
        name="Report bench",
        subject="Bench",
        from_email="bench@example.org",
        body='<a href="https://example.org/a">a</a> <a href="https://example.org/b">b</a>',
        status="sent",
        finished_at=timezone.now(),
        track_opens=True,
        track_clicks=True,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_campaign SET started_at = now() - interval '2 hours' WHERE id = %s",
            [campaign.pk],
        )
        cursor.execute(
            "INSERT INTO sending_delivery (campaign_id, contact_id, status, attempts,"
            " message_id, claimed_by, sent_at, created_at, last_error)"
            " SELECT %s, id, CASE WHEN n %% 50 = 0 THEN 'bounced' WHEN n %% 100 = 1 THEN"
            " 'failed' ELSE 'sent' END, 1, '', '',"
            " now() - interval '2 hours' + (n * interval '36 milliseconds'), now(),"
            " CASE WHEN n %% 100 = 1 THEN '550 mailbox full' ELSE '' END"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audience_contact"
            " WHERE account_id = %s ORDER BY id LIMIT %s) c",
            [campaign.pk, account_id, DELIVERIES],
        )
        cursor.execute(
            "INSERT INTO sending_trackingevent (campaign_id, delivery_id, kind, url, first, at)"
            " SELECT %s, id, 'open', '', true, sent_at + interval '20 minutes'"
            " FROM sending_delivery WHERE campaign_id = %s AND status = 'sent' AND id %% 10 < 3",
            [campaign.pk, campaign.pk],
        )
        cursor.execute(
            "INSERT INTO sending_trackingevent (campaign_id, delivery_id, kind, url, first, at)"
            " SELECT %s, id, 'click', 'https://example.org/a', true,"
            " sent_at + interval '25 minutes' FROM sending_delivery"
            " WHERE campaign_id = %s AND status = 'sent' AND id %% 20 = 0",
            [campaign.pk, campaign.pk],
        )
        cursor.execute(
            "INSERT INTO sending_linkclick (campaign_id, url, clicks) VALUES (%s, %s, %s)",
            [campaign.pk, "https://example.org/a", DELIVERIES // 20],
        )
        cursor.execute("ANALYZE sending_delivery")
        cursor.execute("ANALYZE sending_trackingevent")
    return campaign.pk


def measure(size: int) -> dict:
    t = time.perf_counter()
    account = Account.objects.get(pk=ensure_audience(size))
    campaign = Campaign.objects.get(pk=ensure_campaign(account.pk))
    ready = time.perf_counter() - t
    growth.compact()
    news = MailingList.objects.get(account=account)
    growth_rows = ListGrowth.objects.filter(mailing_list=news).count()

    def counted(days: int) -> list[Any]:
        since = timezone.now() - timezone.timedelta(days=days)
        subs = Subscription.objects.filter(mailing_list__account=account)
        joined = list(
            subs.filter(Q(confirmed_at__gte=since))
            .annotate(d=TruncDate("confirmed_at"))
            .values("d")
            .annotate(n=Count("pk"))
        )
        left = list(
            subs.filter(unsubscribed_at__gte=since)
            .annotate(d=TruncDate("unsubscribed_at"))
            .values("d")
            .annotate(n=Count("pk"))
        )
        return joined + left

    timed("growth, 30 days, maintained rows", lambda: growth.daily(account, 30))
    timed("growth, 90 days, maintained rows", lambda: growth.daily(account, 90))
    timed("growth, 30 days, counted from the subscriptions (not used)", lambda: counted(30))
    whole = timed("dashboard, every figure (30 days)", lambda: dashboard.context(account, 30))
    timed("dashboard, every figure (90 days)", lambda: dashboard.context(account, 90))
    timed(f"report of {DELIVERIES:,} deliveries, whole", lambda: reports.build(campaign))
    timed(
        f"figures by receiving domain of {DELIVERIES:,} deliveries",
        lambda: reports.by_domain(campaign, per_contact=True),
    )
    timed("key rates of the campaign (list, dashboard)", lambda: reports.key_rates([campaign]))

    # Many single-row statements not compacted yet, on a list of their own (deleted after).
    extra, _ = MailingList.objects.get_or_create(account=account, name="Growth bench")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audience_listgrowth (mailing_list_id, day, subscribed, unsubscribed)"
            " SELECT %s, (now() AT TIME ZONE 'UTC')::date - (i %% 30), 1, 0"
            " FROM generate_series(1, 100000) AS i",
            [extra.pk],
        )
        cursor.execute("ANALYZE audience_listgrowth")
    try:
        timed("growth, 30 days, with 100,000 rows not compacted", lambda: growth.daily(account, 30))
    finally:
        t = time.perf_counter()
        removed = growth.compact()
        compact_s = time.perf_counter() - t
        extra.delete()
    return {
        "ready_s": ready, "growth_rows": growth_rows, "timed": TIMED,
        "compacted": removed, "compact_s": compact_s, "dashboard_ms": whole,
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
