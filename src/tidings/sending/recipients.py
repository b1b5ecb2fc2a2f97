"""Who a campaign goes to: the mailability rule for marketing over its lists and
segments, fixed as one queued `Delivery` per recipient (INSERT ... SELECT ... ON
CONFLICT DO NOTHING: fixing them twice adds nobody twice)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from tidings.audience import mailability
from tidings.audience.models import Contact, Subscription
from tidings.audience.segments import contacts_in
from tidings.campaigns.models import Campaign
from tidings.core.mail import Purpose
from tidings.sending.models import Delivery

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status


# Recipients ------------------------------------------------------------------------------


def recipients(campaign: Campaign) -> Any:
    """The contacts `campaign` goes to now (the mailability rule, for marketing): those
    confirmed on one of its lists, and the members of its segments confirmed on some
    list. Checked again for each chunk as it is sent."""
    lists = list(campaign.lists.values_list("pk", flat=True))
    wanted = mailability.contacts_q(Purpose.MARKETING, lists)
    segments = _segment_members(campaign)
    if segments:
        on_some_list = mailability.contacts_q(Purpose.MARKETING, mailability.ANY_LIST)
        for members in segments:
            wanted |= on_some_list & Q(pk__in=members)
    return Contact.objects.filter(wanted, account_id=campaign.account_id)


def _segment_members(campaign: Campaign) -> list[Any]:
    return [contacts_in(segment).values("pk") for segment in campaign.segments.all()]


# Rows changed since the last ANALYZE above which the recipients' tables are analysed
# before a campaign starts.
STALE_STATISTICS = 10_000


def _fresh_statistics() -> None:
    """A list imported a minute ago is not in the planner's statistics yet: it takes the
    new contacts for a handful and joins them with a nested loop over the list's
    subscriptions, quadratic in the list's size (a 100,000-recipient campaign was still
    materialising after 9 minutes). Analysing such a table first takes a sample, well
    under a second."""
    if connection.vendor != "postgresql":
        return
    tables = [Contact._meta.db_table, Subscription._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s) AND n_mod_since_analyze > %s",
            [tables, STALE_STATISTICS],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def count(campaign: Campaign) -> int:
    """How many contacts the campaign would go to now (the send page's checklist and
    its confirmation), exactly: with fresh statistics, or a list imported a minute ago
    took 30 s to count at 20,000 contacts (the nested loop above)."""
    _fresh_statistics()
    return recipients(campaign).count()


def materialise(campaign: Campaign, *, after: int = 0, limit: int | None = None) -> int:
    """Insert one queued delivery per recipient (contact ids above `after`; with
    `limit`, only the first so many by id); existing ones are left as they are.
    Without `limit` the campaign's recipients are then all fixed."""
    # For the first batch too: with stale statistics its 500 recipients took minutes at
    # 100,000 (the nested loop described there).
    _fresh_statistics()
    wanted = recipients(campaign).filter(pk__gt=after).order_by()
    if limit is not None:
        wanted = wanted.order_by("pk")[:limit]
    select_sql, params = wanted.values_list("pk").query.sql_with_params()
    table = Delivery._meta.db_table
    # The table name is the model's own; the recipients query is Django's, with params.
    sql = (
        f"INSERT INTO {table} (campaign_id, contact_id, status, attempts, message_id, "  # noqa: S608
        "claimed_by, created_at, last_error) "
        f"SELECT %s, r.id, %s, 0, '', '', %s, '' FROM ({select_sql}) AS r(id) WHERE true "
        "ON CONFLICT (campaign_id, contact_id) DO NOTHING"
    )
    if connection.vendor == "sqlite":  # no column list on a derived table
        sql = sql.replace("AS r(id)", "AS r").replace("r.id", "r.*")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, D.QUEUED, now, *params])
        added = cursor.rowcount
    if limit is None:
        Campaign.objects.filter(pk=campaign.pk, recipients_fixed_at__isnull=True).update(
            recipients_fixed_at=now
        )
    return added
