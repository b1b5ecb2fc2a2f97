"""What a customer sees first after logging in: how the audience grew, the last
campaigns with their rates, what is sending now and why anything failed or paused, and
the contacts' requests that are due.

Every figure is read from what is maintained (the lists' growth and counters kept by
triggers, the campaigns' counts) or from a few rows: the page stays fast for an account
of a million contacts (bench/README.md, "Dashboard").
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.audience import counters, growth
from tidings.audience.models import ContactRequest, MailingList, Subscription
from tidings.campaigns.models import Campaign
from tidings.sending import engine, reports

S = Campaign.Status
GROWTH_DAYS = (30, 90)
RECENT_CAMPAIGNS = 5
REQUESTS_SHOWN = 5
FAILURE_REASONS_SHOWN = 3


def audience_growth(account: Account, days: int) -> dict[str, Any]:
    """Subscriptions confirmed and left per day over `days` days, their totals, and the
    confirmed subscriptions of every list now (the lists' counters)."""
    series = growth.daily(account, days)
    list_ids = list(MailingList.objects.filter(account=account).values_list("pk", flat=True))
    sizes = counters.sizes(list_ids)
    subscribed = sum(row["subscribed"] for row in series)
    unsubscribed = sum(row["unsubscribed"] for row in series)
    return {
        "days": days,
        "series": series,
        "subscribed": subscribed,
        "unsubscribed": unsubscribed,
        "net": subscribed - unsubscribed,
        "now": sum(size[Subscription.Status.CONFIRMED] for size in sizes.values()),
        "chart": {
            "labels": [f"{row['day']:%d %b}" for row in series],
            "datasets": [
                {
                    "key": "subscribed",
                    "label": _("Subscribed"),
                    "data": [row["subscribed"] for row in series],
                },
                {
                    "key": "unsubscribed",
                    "label": _("Left"),
                    "data": [row["unsubscribed"] for row in series],
                },
            ],
            "yTitle": _("subscriptions per day"),
        },
    }


def recent_campaigns(account: Account) -> list[dict[str, Any]]:
    campaigns = list(
        Campaign.objects.filter(account=account, started_at__isnull=False).order_by("-started_at")[
            :RECENT_CAMPAIGNS
        ]
    )
    rates = reports.key_rates(campaigns)
    return [{"campaign": c, **rates.get(c.pk, {})} for c in campaigns]


def sending_now(account: Account) -> list[dict[str, Any]]:
    """Campaigns sending or paused, with their progress, the pause's reason and the most
    frequent reasons messages failed (the engine's, as the send page shows them)."""
    rows = []
    # An automation's step messages are open for it, never started (`lifecycle.
    # open_for_steps`): the automations page shows them, not "sending now".
    for campaign in Campaign.objects.filter(
        account=account, status__in=[S.SENDING, S.PAUSED], started_at__isnull=False
    ).order_by("-started_at"):
        progress = engine.progress(campaign)
        done = progress["total"] - progress["remaining"]
        rows.append(
            {
                "campaign": campaign,
                "progress": progress,
                "done": done,
                "percent": int(100 * done / progress["total"]) if progress["total"] else 0,
                "failures": (
                    engine.failure_reasons(campaign, limit=FAILURE_REASONS_SHOWN)
                    if progress["failed"]
                    else []
                ),
            }
        )
    return rows


def scheduled(account: Account) -> list[Campaign]:
    return list(
        Campaign.objects.filter(account=account, status=S.SCHEDULED).order_by("scheduled_at")[:5]
    )


def due_requests(account: Account) -> dict[str, Any]:
    """The contacts' open requests, the soonest due first, and how many are overdue."""
    open_requests = ContactRequest.objects.filter(
        account=account, status=ContactRequest.Status.OPEN
    )
    counts = open_requests.aggregate(
        total=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=timezone.now()))
    )
    return {
        "rows": list(open_requests.order_by("due_at")[:REQUESTS_SHOWN]),
        "total": counts["total"],
        "overdue": counts["overdue"],
    }


def context(account: Account, days: int) -> dict[str, Any]:
    return {
        "growth": audience_growth(account, days),
        "growth_days": GROWTH_DAYS,
        "recent": recent_campaigns(account),
        "sending": sending_now(account),
        "scheduled": scheduled(account),
        "requests": due_requests(account),
    }
