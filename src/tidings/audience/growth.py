"""How an account's audience grew, day by day: subscriptions confirmed and subscriptions
left, kept by the database like the lists' counters (audience.counters).

The dashboard shows 30 or 90 days of it for accounts of a million contacts: counting
subscriptions by date on every page view would read every one imported that month, so
triggers on audience_subscription keep `ListGrowth` rows in the same transaction as
every change, whatever wrote it (services, bulk actions, the import's COPY and
INSERT ... SELECT, raw SQL). A day is the UTC date of the change.

- subscribed: a subscription written as confirmed, or one that became confirmed (a
  double opt-in confirmed).
- unsubscribed: a confirmed subscription that became unsubscribed. A subscription
  deleted (the contact erased or deleted) is not counted as a departure.

PostgreSQL appends one row per statement, list and day (two imports into one list never
wait on one row); `compact` folds them (hourly, with the lists' counters). SQLite adds to
one row per list and day. When the triggers are first made, the days before are filled
in from the subscriptions' own dates (`created_at`, `confirmed_at`, `unsubscribed_at`).
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from tidings.accounts.models import Account
from tidings.audience.models import ListGrowth, Subscription
from tidings.core import triggers

CONFIRMED = Subscription.Status.CONFIRMED.value
UNSUBSCRIBED = Subscription.Status.UNSUBSCRIBED.value

# The statuses are Subscription.Status.CONFIRMED and UNSUBSCRIBED. A day is the UTC date
# the subscription itself holds (confirmed_at, else created_at; unsubscribed_at), so that
# a change written with its own time (the services, an import) counts on that day; a
# statement that left them empty counts on the day it ran.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audience_listgrowth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audience_listgrowth (mailing_list_id, day, subscribed, unsubscribed)
    SELECT mailing_list_id, day, count(*), 0 FROM (
      SELECT mailing_list_id,
        (coalesce(confirmed_at, created_at, now()) AT TIME ZONE 'UTC')::date AS day
      FROM new_rows WHERE status = 'confirmed'
    ) c GROUP BY 1, 2;
  ELSE
    INSERT INTO audience_listgrowth (mailing_list_id, day, subscribed, unsubscribed)
    SELECT mailing_list_id, day, sum(s), sum(u) FROM (
      SELECT n.mailing_list_id,
        (coalesce(n.confirmed_at, now()) AT TIME ZONE 'UTC')::date AS day, 1 AS s, 0 AS u
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE n.status = 'confirmed' AND o.status <> 'confirmed'
      UNION ALL
      SELECT n.mailing_list_id,
        (coalesce(n.unsubscribed_at, now()) AT TIME ZONE 'UTC')::date, 0, 1
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE n.status = 'unsubscribed' AND o.status = 'confirmed'
    ) c GROUP BY 1, 2;
  END IF;
  RETURN NULL;
END $$;
"""

_PG_TRIGGERS = {
    "audience_listgrowth_ins": "AFTER INSERT ON audience_subscription REFERENCING NEW TABLE AS"
    " new_rows FOR EACH STATEMENT EXECUTE FUNCTION audience_listgrowth_change()",
    "audience_listgrowth_upd": "AFTER UPDATE ON audience_subscription REFERENCING OLD TABLE AS"
    " old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION"
    " audience_listgrowth_change()",
}


def _sqlite_add(day: str, column: str) -> str:
    """Statements adding 1 to `column` of NEW's list on `day` (an SQL date) on SQLite."""
    same = f"mailing_list_id = NEW.mailing_list_id AND day = {day}"
    return (
        "INSERT INTO audience_listgrowth (mailing_list_id, day, subscribed, unsubscribed)"  # noqa: S608 (constants)
        f" SELECT NEW.mailing_list_id, {day}, 0, 0"
        f" WHERE NOT EXISTS (SELECT 1 FROM audience_listgrowth WHERE {same});"
        f" UPDATE audience_listgrowth SET {column} = {column} + 1"
        f" WHERE id = (SELECT min(id) FROM audience_listgrowth WHERE {same});"
    )


_SQLITE_TRIGGERS = {
    "audience_listgrowth_ins": "AFTER INSERT ON audience_subscription"
    " WHEN NEW.status = 'confirmed' BEGIN "
    + _sqlite_add("date(coalesce(NEW.confirmed_at, NEW.created_at, 'now'))", "subscribed")
    + " END",
    "audience_listgrowth_confirm": "AFTER UPDATE OF status ON audience_subscription"
    " WHEN NEW.status = 'confirmed' AND OLD.status IS NOT 'confirmed' BEGIN "
    + _sqlite_add("date(coalesce(NEW.confirmed_at, 'now'))", "subscribed")
    + " END",
    "audience_listgrowth_leave": "AFTER UPDATE OF status ON audience_subscription"
    " WHEN NEW.status = 'unsubscribed' AND OLD.status = 'confirmed' BEGIN "
    + _sqlite_add("date(coalesce(NEW.unsubscribed_at, 'now'))", "unsubscribed")
    + " END",
}


def install_triggers(conn: BaseDatabaseWrapper | None = None) -> bool:
    """Create the triggers that are missing (the migration, and after every migrate:
    SQLite drops a table's triggers when a migration rebuilds the table); the first
    time, fill in the days before from the subscriptions' dates. Returns whether
    anything was made."""
    conn = conn or connection
    if conn.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"audience growth needs triggers on {conn.vendor}")
    missing = triggers.missing(conn, postgresql=_PG_TRIGGERS, sqlite=_SQLITE_TRIGGERS)
    if not missing:
        return False
    with transaction.atomic(using=conn.alias):
        triggers.create(
            conn, missing, functions=_PG_FUNCTION, postgresql=_PG_TRIGGERS, sqlite=_SQLITE_TRIGGERS
        )
        if not ListGrowth.objects.using(conn.alias).exists():
            _fill_from_dates(conn.alias)
    return True


def _fill_from_dates(alias: str) -> None:
    """The days before the triggers existed, from the subscriptions' own dates."""
    subscriptions = Subscription.objects.using(alias)
    joined = (
        subscriptions.filter(Q(status=CONFIRMED) | Q(status=UNSUBSCRIBED))
        .annotate(d=TruncDate(Coalesce("confirmed_at", "created_at"), tzinfo=UTC))
        .values("mailing_list_id", "d")
        .annotate(n=Count("pk"))
        .order_by()
    )
    left = (
        subscriptions.filter(status=UNSUBSCRIBED, unsubscribed_at__isnull=False)
        .annotate(d=TruncDate("unsubscribed_at", tzinfo=UTC))
        .values("mailing_list_id", "d")
        .annotate(n=Count("pk"))
        .order_by()
    )
    ListGrowth.objects.using(alias).bulk_create(
        [
            *(
                ListGrowth(mailing_list_id=r["mailing_list_id"], day=r["d"], subscribed=r["n"])
                for r in joined
            ),
            *(
                ListGrowth(mailing_list_id=r["mailing_list_id"], day=r["d"], unsubscribed=r["n"])
                for r in left
            ),
        ],
        batch_size=1000,
    )


def after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After every migrate: the triggers are there (made again if a rebuild dropped them)."""
    conn = connections[using]
    if ListGrowth._meta.db_table in conn.introspection.table_names():
        install_triggers(conn)


def daily(account: Account, days: int, *, today: date | None = None) -> list[dict[str, Any]]:
    """The account's subscriptions confirmed and left on each of the last `days` days
    (today included), oldest first, every day present (0 when nothing changed)."""
    today = today or timezone.now().astimezone(UTC).date()
    start = today - timedelta(days=days - 1)
    found: dict[date, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in ListGrowth.objects.filter(
            mailing_list__account=account, day__gte=start, day__lte=today
        )
        .values("day")
        .annotate(subscribed=Sum("subscribed"), unsubscribed=Sum("unsubscribed"))
        .order_by()
    }
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row: dict[str, Any] = found.get(day, {})
        series.append(
            {
                "day": day,
                "subscribed": int(row.get("subscribed") or 0),
                "unsubscribed": int(row.get("unsubscribed") or 0),
            }
        )
    return series


def compact() -> int:
    """Fold each list's rows of a day into one (PostgreSQL appends one per statement).
    Returns the number of rows removed. Rows appended meanwhile are left for next time."""
    removed = 0
    groups = (
        ListGrowth.objects.values("mailing_list_id", "day")
        .annotate(rows=Count("pk"), first=Min("pk"), s=Sum("subscribed"), u=Sum("unsubscribed"))
        .filter(rows__gt=1)
        .order_by()
    )
    for group in groups:
        with transaction.atomic():
            rows = ListGrowth.objects.select_for_update().filter(
                mailing_list_id=group["mailing_list_id"], day=group["day"]
            )
            ids = list(rows.values_list("pk", flat=True))
            totals = ListGrowth.objects.filter(pk__in=ids).aggregate(
                s=Sum("subscribed"), u=Sum("unsubscribed")
            )
            keep = min(ids)
            ListGrowth.objects.filter(pk=keep).update(
                subscribed=totals["s"], unsubscribed=totals["u"]
            )
            removed += ListGrowth.objects.filter(pk__in=ids).exclude(pk=keep).delete()[0]
    return removed
