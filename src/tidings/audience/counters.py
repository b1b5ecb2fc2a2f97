"""Counters of each list's subscriptions per status, kept by the database.

The size of a whole list ("everyone on the list", the lists page) is read from
`ListCount` rows instead of counting a million subscriptions. Triggers on
audience_subscription keep them in the same transaction as every change, whatever wrote
it: the services, bulk actions, the import's COPY and INSERT ... SELECT, Django's
cascades, the erasure's plain deletes, raw SQL. There is no second place to keep in step,
and nothing a write path must remember to call.

- PostgreSQL: statement-level triggers with transition tables. Each statement appends
  one row per list and status it changed (a delta), so a statement of a million rows
  costs one aggregate, and two transactions writing to one list (the import's two
  connections) never wait on a shared counter row. `compact` folds the deltas (hourly).
- SQLite (the embedded default, one writer at a time): row-level triggers add to one row
  per list and status.

A TRUNCATE of the subscriptions empties the counters too; deleting a list deletes its
counters (a trigger, so that a cascade deleting the subscriptions after the counters
cannot leave a delta pointing at a deleted list). `recount` repairs the counters from the
subscriptions (`tidings manage recount_lists`), for a database whose triggers were
dropped and made again, or to check them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Sum

from tidings.audience.models import ListCount, MailingList, Subscription
from tidings.core import triggers

_PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION audience_listcount_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Lists deleted earlier in the transaction get no delta (their counters went with them).
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audience_listcount (mailing_list_id, status, n)
    SELECT d.mailing_list_id, d.status, d.n
    FROM (SELECT mailing_list_id, status, count(*) AS n FROM new_rows GROUP BY 1, 2) d
    WHERE EXISTS (SELECT 1 FROM audience_mailinglist m WHERE m.id = d.mailing_list_id);
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO audience_listcount (mailing_list_id, status, n)
    SELECT d.mailing_list_id, d.status, -d.n
    FROM (SELECT mailing_list_id, status, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE EXISTS (SELECT 1 FROM audience_mailinglist m WHERE m.id = d.mailing_list_id);
  ELSE
    INSERT INTO audience_listcount (mailing_list_id, status, n)
    SELECT d.mailing_list_id, d.status, d.n
    FROM (
      SELECT mailing_list_id, status, sum(k) AS n FROM (
        SELECT mailing_list_id, status, -1 AS k FROM old_rows
        UNION ALL
        SELECT mailing_list_id, status, 1 AS k FROM new_rows
      ) c GROUP BY 1, 2 HAVING sum(k) <> 0
    ) d
    WHERE EXISTS (SELECT 1 FROM audience_mailinglist m WHERE m.id = d.mailing_list_id);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION audience_listcount_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM audience_listcount;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION audience_listcount_list_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM audience_listcount WHERE mailing_list_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$;
"""

_PG_TRIGGERS = {
    "audience_listcount_ins": "AFTER INSERT ON audience_subscription REFERENCING NEW TABLE AS"
    " new_rows FOR EACH STATEMENT EXECUTE FUNCTION audience_listcount_change()",
    "audience_listcount_upd": "AFTER UPDATE ON audience_subscription REFERENCING OLD TABLE AS"
    " old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION"
    " audience_listcount_change()",
    "audience_listcount_del": "AFTER DELETE ON audience_subscription REFERENCING OLD TABLE AS"
    " old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience_listcount_change()",
    "audience_listcount_trunc": "AFTER TRUNCATE ON audience_subscription FOR EACH STATEMENT"
    " EXECUTE FUNCTION audience_listcount_truncated()",
    "audience_listcount_list_del": "AFTER DELETE ON audience_mailinglist REFERENCING OLD TABLE"
    " AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience_listcount_list_deleted()",
}


def _sqlite_add(row: str, sign: str) -> str:
    """Statements adding `sign`1 to the counter of `row` (NEW or OLD) on SQLite."""
    same = f"mailing_list_id = {row}.mailing_list_id AND status = {row}.status"
    return (
        "INSERT INTO audience_listcount (mailing_list_id, status, n)"  # noqa: S608 (constants)
        f" SELECT {row}.mailing_list_id, {row}.status, 0"
        f" WHERE EXISTS (SELECT 1 FROM audience_mailinglist WHERE id = {row}.mailing_list_id)"
        f" AND NOT EXISTS (SELECT 1 FROM audience_listcount WHERE {same});"
        f" UPDATE audience_listcount SET n = n {sign} 1"
        f" WHERE id = (SELECT min(id) FROM audience_listcount WHERE {same});"
    )


_SQLITE_TRIGGERS = {
    "audience_listcount_ins": "AFTER INSERT ON audience_subscription BEGIN "
    + _sqlite_add("NEW", "+")
    + " END",
    "audience_listcount_upd": "AFTER UPDATE OF status, mailing_list_id ON audience_subscription"
    " WHEN OLD.status IS NOT NEW.status OR OLD.mailing_list_id IS NOT NEW.mailing_list_id"
    " BEGIN " + _sqlite_add("OLD", "-") + " " + _sqlite_add("NEW", "+") + " END",
    "audience_listcount_del": "AFTER DELETE ON audience_subscription BEGIN "
    + _sqlite_add("OLD", "-")
    + " END",
    "audience_listcount_list_del": "AFTER DELETE ON audience_mailinglist BEGIN"
    " DELETE FROM audience_listcount WHERE mailing_list_id = OLD.id; END",
}


def install_triggers(conn: BaseDatabaseWrapper | None = None) -> bool:
    """Create the triggers that are missing (the migration, and after every migrate:
    SQLite drops a table's triggers when a migration rebuilds the table). When any was
    missing, the counters are recounted. Returns whether anything was made."""
    conn = conn or connection
    if conn.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"list counters need triggers on {conn.vendor}")
    missing = triggers.missing(conn, postgresql=_PG_TRIGGERS, sqlite=_SQLITE_TRIGGERS)
    if not missing:
        return False
    with transaction.atomic(using=conn.alias):
        triggers.create(
            conn, missing, functions=_PG_FUNCTIONS, postgresql=_PG_TRIGGERS, sqlite=_SQLITE_TRIGGERS
        )
        _recount_all(conn)
    return True


def after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After every migrate: the triggers are there (made again if a rebuild dropped them)."""
    conn = connections[using]
    if ListCount._meta.db_table in conn.introspection.table_names():
        install_triggers(conn)


def sizes(list_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """For each list, its subscriptions by status (every status present, 0 if none)."""
    ids = list(list_ids)
    found = {i: dict.fromkeys(Subscription.Status.values, 0) for i in ids}
    rows = (
        ListCount.objects.filter(mailing_list_id__in=ids)
        .values_list("mailing_list_id", "status")
        .annotate(total=Sum("n"))
        .order_by()
    )
    for list_id, status, total in rows:
        found[list_id][status] = int(total)
    return found


def size(list_id: int, status: str) -> int:
    return sizes([list_id])[list_id][status]


def _lock(conn: BaseDatabaseWrapper) -> None:
    """Hold off every writer of counters until the transaction ends: a recount counts
    what is committed, and a writer still open then adds its delta after."""
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("LOCK TABLE audience_listcount IN EXCLUSIVE MODE")


def _recount_all(conn: BaseDatabaseWrapper) -> None:
    _lock(conn)
    with conn.cursor() as cursor:
        cursor.execute("DELETE FROM audience_listcount")
        cursor.execute(
            "INSERT INTO audience_listcount (mailing_list_id, status, n)"
            " SELECT mailing_list_id, status, count(*) FROM audience_subscription"
            " GROUP BY mailing_list_id, status"
        )


def recount(lists: Iterable[MailingList] | None = None) -> dict[int, dict[str, int]]:
    """Count the subscriptions again and replace the counters of `lists` (all lists when
    None) with the result; returns, per list whose counters were wrong, by how much
    (what the counters said minus the truth) for each status."""
    wrong: dict[int, dict[str, int]] = {}
    ids = (
        list(MailingList.objects.values_list("pk", flat=True))
        if lists is None
        else [ml.pk for ml in lists]
    )
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        with transaction.atomic():
            _lock(connection)
            said = sizes(chunk)
            truth = {i: dict.fromkeys(Subscription.Status.values, 0) for i in chunk}
            rows = (
                Subscription.objects.filter(mailing_list_id__in=chunk)
                .values_list("mailing_list_id", "status")
                .annotate(total=Count("pk"))
                .order_by()
            )
            for list_id, status, total in rows:
                truth[list_id][status] = total
            ListCount.objects.filter(mailing_list_id__in=chunk).delete()
            ListCount.objects.bulk_create(
                ListCount(mailing_list_id=i, status=s, n=n)
                for i, by_status in truth.items()
                for s, n in by_status.items()
                if n
            )
            for i in chunk:
                diff = {s: said[i][s] - truth[i][s] for s in truth[i] if said[i][s] != truth[i][s]}
                if diff:
                    wrong[i] = diff
    return wrong


def compact() -> int:
    """Fold each list's deltas into one row per status (PostgreSQL appends one per
    statement). Returns the number of rows removed."""
    removed = 0
    with transaction.atomic():
        _lock(connection)
        groups = (
            ListCount.objects.values_list("mailing_list_id", "status")
            .annotate(rows=Count("pk"), total=Sum("n"))
            .filter(rows__gt=1)
            .order_by()
        )
        for list_id, status, rows, total in groups:
            ListCount.objects.filter(mailing_list_id=list_id, status=status).delete()
            if total:
                ListCount.objects.create(mailing_list_id=list_id, status=status, n=total)
            removed += rows - (1 if total else 0)
    return removed
