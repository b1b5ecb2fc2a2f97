"""What fires an automation's trigger, seen without a scan: database triggers write a
`PendingEntry` row, in the same transaction as the change, for each automation that
listens (running or paused) when

- a tag is added to a contact (on audience_contact: inserted with tags, or its tags
  updated to hold one more), whatever wrote it: a form, the API, an import (COPY
  included), a bulk action, raw SQL;
- a click is recorded by tracking (on sending_trackingevent): tracking records a click
  only under per-contact tracking and for a contact who did not object to it (P26),
  so a contact who objected never enters.

The scheduler (automations.engine.enter_pending) enters them and deletes the rows. No
row is written while no automation listens, so the triggers cost nothing more than an
indexed look-up of the account's automations.

And what may take a contact out, also seen without a scan: for a contact active in an
automation, a `Recheck` row per automation when what the mailability rule reads
(`audience.mailability.contacts_q`; `RULE_READS` below, kept equal to the rule's tables
by tests/automations/test_leave.py) changes:

- the contact's status, restriction or address (its digest: the suppression list is
  matched on it);
- one of its subscriptions changes status or list, or is deleted (statement-level on
  PostgreSQL, one set-based insert for a list's million);
- an objection of the contact is made, or changes status;
- its address is put on the account's suppression list (statement-level on PostgreSQL
  too: closing an account suppresses a million addresses in one statement).

The account's own state (closed, restricted) is not watched: the scheduler checks every
contact of an automation whose account is not open (engine.leave_unmailable)."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from tidings.automations.models import PendingEntry, Recheck
from tidings.core import triggers

_PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION automations_tag_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF jsonb_typeof(NEW.tags) <> 'array' THEN RETURN NULL; END IF;
  INSERT INTO automations_pendingentry (automation_id, contact_id, at)
  SELECT a.id, NEW.id, clock_timestamp()
  FROM automations_automation a
  WHERE a.account_id = NEW.account_id AND a.trigger = 'tag_added'
    AND a.status IN ('active', 'paused')
    AND NEW.tags ? a.trigger_tag
    AND (TG_OP = 'INSERT' OR jsonb_typeof(OLD.tags) <> 'array'
         OR NOT (OLD.tags ? a.trigger_tag));
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION automations_clicked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO automations_pendingentry (automation_id, contact_id, at)
  SELECT a.id, d.contact_id, NEW.at
  FROM automations_automation a JOIN sending_delivery d ON d.id = NEW.delivery_id
  WHERE a.trigger_campaign_id = NEW.campaign_id AND a.trigger = 'clicked'
    AND a.status IN ('active', 'paused')
    AND (a.trigger_url = '' OR a.trigger_url = NEW.url);
  RETURN NULL;
END $$;
"""

_OPEN = (
    "EXISTS (SELECT 1 FROM automations_automation a JOIN accounts_account ac"
    " ON ac.id = a.account_id WHERE a.id = e.automation_id AND ac.status = 'active')"
)
# Each active enrolment of the contact: a Recheck row, while its account is open (the
# scheduler checks every contact of an account that is not: nothing is written while a
# closed account's rows are erased).
_PG_RECHECK_FUNCTIONS = """
CREATE OR REPLACE FUNCTION automations_recheck_contact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO automations_recheck (automation_id, contact_id, at)
  SELECT e.automation_id, e.contact_id, clock_timestamp() FROM automations_enrolment e
  WHERE e.contact_id = NEW.id AND e.status = 'active' AND {OPEN};
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION automations_recheck_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO automations_recheck (automation_id, contact_id, at)
  SELECT e.automation_id, e.contact_id, clock_timestamp() FROM automations_enrolment e
  WHERE e.contact_id = NEW.contact_id AND e.status = 'active' AND {OPEN};
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION automations_recheck_suppressed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM accounts_account WHERE status = 'active'
                 AND id IN (SELECT DISTINCT account_id FROM added)) THEN
    RETURN NULL;
  END IF;
  INSERT INTO automations_recheck (automation_id, contact_id, at)
  SELECT e.automation_id, e.contact_id, clock_timestamp()
  FROM added s
  JOIN accounts_account ac ON ac.id = s.account_id AND ac.status = 'active'
  JOIN audience_contact c ON c.account_id = s.account_id AND c.digest = s.digest
  JOIN automations_enrolment e ON e.contact_id = c.id AND e.status = 'active';
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION automations_recheck_subscriptions_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- An account being erased (closed) writes nothing: one look at its lists.
  IF NOT EXISTS (SELECT 1 FROM audience_mailinglist l JOIN accounts_account ac
                 ON ac.id = l.account_id AND ac.status = 'active'
                 WHERE l.id IN (SELECT DISTINCT mailing_list_id FROM gone)) THEN
    RETURN NULL;
  END IF;
  INSERT INTO automations_recheck (automation_id, contact_id, at)
  SELECT e.automation_id, e.contact_id, clock_timestamp()
  FROM (SELECT DISTINCT contact_id FROM gone) g
  JOIN automations_enrolment e ON e.contact_id = g.contact_id AND e.status = 'active'
  WHERE {OPEN};
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION automations_recheck_subscriptions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO automations_recheck (automation_id, contact_id, at)
  SELECT e.automation_id, e.contact_id, clock_timestamp()
  FROM (SELECT DISTINCT o.contact_id FROM was o JOIN now_ n ON n.id = o.id
        WHERE o.status IS DISTINCT FROM n.status
           OR o.mailing_list_id IS DISTINCT FROM n.mailing_list_id) g
  JOIN automations_enrolment e ON e.contact_id = g.contact_id AND e.status = 'active'
  WHERE {OPEN};
  RETURN NULL;
END $$;
""".replace("{OPEN}", _OPEN)
_PG_RECHECK_TRIGGERS = {
    "automations_recheck_contact": "AFTER UPDATE OF status, restricted_at, digest"
    " ON audience_contact FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status"
    " OR OLD.restricted_at IS DISTINCT FROM NEW.restricted_at"
    " OR OLD.digest IS DISTINCT FROM NEW.digest)"
    " EXECUTE FUNCTION automations_recheck_contact()",
    "automations_recheck_objection_ins": "AFTER INSERT ON audience_contactrequest FOR EACH ROW"
    " WHEN (NEW.kind = 'objection') EXECUTE FUNCTION automations_recheck_request()",
    "automations_recheck_objection_upd": "AFTER UPDATE OF status ON audience_contactrequest"
    " FOR EACH ROW WHEN (NEW.kind = 'objection' AND OLD.status IS DISTINCT FROM NEW.status)"
    " EXECUTE FUNCTION automations_recheck_request()",
    "automations_recheck_suppressed": "AFTER INSERT ON audience_suppressedcontact"
    " REFERENCING NEW TABLE AS added FOR EACH STATEMENT"
    " EXECUTE FUNCTION automations_recheck_suppressed()",
    "automations_recheck_subscriptions_gone": "AFTER DELETE ON audience_subscription"
    " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
    " EXECUTE FUNCTION automations_recheck_subscriptions_gone()",
    "automations_recheck_subscriptions_changed": "AFTER UPDATE ON audience_subscription"
    " REFERENCING OLD TABLE AS was NEW TABLE AS now_ FOR EACH STATEMENT"
    " EXECUTE FUNCTION automations_recheck_subscriptions_changed()",
}


def _sqlite_recheck(who: str) -> str:
    return (
        "INSERT INTO automations_recheck (automation_id, contact_id, at)"  # noqa: S608 (constants)
        " SELECT e.automation_id, e.contact_id, strftime('%Y-%m-%d %H:%M:%f', 'now')"
        f" FROM automations_enrolment e WHERE e.contact_id = {who} AND e.status = 'active'"
        f" AND {_OPEN};"
    )


_SQLITE_RECHECK_TRIGGERS = {
    "automations_recheck_contact": "AFTER UPDATE OF status, restricted_at, digest"
    " ON audience_contact WHEN OLD.status IS NOT NEW.status"
    " OR OLD.restricted_at IS NOT NEW.restricted_at OR OLD.digest IS NOT NEW.digest BEGIN "
    + _sqlite_recheck("NEW.id")
    + " END",
    "automations_recheck_objection_ins": "AFTER INSERT ON audience_contactrequest"
    " WHEN NEW.kind = 'objection' BEGIN " + _sqlite_recheck("NEW.contact_id") + " END",
    "automations_recheck_objection_upd": "AFTER UPDATE OF status ON audience_contactrequest"
    " WHEN NEW.kind = 'objection' AND OLD.status IS NOT NEW.status BEGIN "
    + _sqlite_recheck("NEW.contact_id")
    + " END",
    "automations_recheck_suppressed": "AFTER INSERT ON audience_suppressedcontact BEGIN "  # noqa: S608 (constants)
    "INSERT INTO automations_recheck (automation_id, contact_id, at)"
    " SELECT e.automation_id, e.contact_id, strftime('%Y-%m-%d %H:%M:%f', 'now')"
    " FROM audience_contact c JOIN automations_enrolment e ON e.contact_id = c.id"
    " WHERE c.account_id = NEW.account_id AND c.digest = NEW.digest"
    f" AND e.status = 'active' AND {_OPEN}; END",
    "automations_recheck_subscriptions_gone": "AFTER DELETE ON audience_subscription BEGIN "
    + _sqlite_recheck("OLD.contact_id")
    + " END",
    "automations_recheck_subscriptions_changed": "AFTER UPDATE OF status, mailing_list_id"
    " ON audience_subscription WHEN OLD.status IS NOT NEW.status"
    " OR OLD.mailing_list_id IS NOT NEW.mailing_list_id BEGIN "
    + _sqlite_recheck("OLD.contact_id")
    + " END",
}
# The tables the mailability rule reads, each watched above but the accounts'.
RULE_READS = frozenset(
    {
        "audience_contact",
        "audience_subscription",
        "audience_contactrequest",
        "audience_suppressedcontact",
        "accounts_account",
    }
)

_PG_TRIGGERS = {
    "automations_tag_added_ins": "AFTER INSERT ON audience_contact FOR EACH ROW"
    " WHEN (NEW.tags <> '[]'::jsonb) EXECUTE FUNCTION automations_tag_added()",
    "automations_tag_added_upd": "AFTER UPDATE OF tags ON audience_contact FOR EACH ROW"
    " WHEN (OLD.tags IS DISTINCT FROM NEW.tags) EXECUTE FUNCTION automations_tag_added()",
    "automations_clicked": "AFTER INSERT ON sending_trackingevent FOR EACH ROW"
    " WHEN (NEW.kind = 'click') EXECUTE FUNCTION automations_clicked()",
}


def _sqlite_tag(old: str) -> str:
    return (
        "INSERT INTO automations_pendingentry (automation_id, contact_id, at)"  # noqa: S608 (constants)
        " SELECT a.id, NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now')"
        " FROM automations_automation a"
        " WHERE a.account_id = NEW.account_id AND a.trigger = 'tag_added'"
        " AND a.status IN ('active', 'paused')"
        " AND json_valid(NEW.tags)"
        " AND a.trigger_tag IN (SELECT value FROM json_each(NEW.tags))"
        f"{old};"
    )


_SQLITE_TRIGGERS = {
    "automations_tag_added_ins": "AFTER INSERT ON audience_contact BEGIN "
    + _sqlite_tag("")
    + " END",
    "automations_tag_added_upd": "AFTER UPDATE OF tags ON audience_contact BEGIN "  # noqa: S608 (constants)
    + _sqlite_tag(
        " AND (NOT json_valid(OLD.tags)"
        " OR a.trigger_tag NOT IN (SELECT value FROM json_each(OLD.tags)))"
    )
    + " END",
    "automations_clicked": "AFTER INSERT ON sending_trackingevent WHEN NEW.kind = 'click' BEGIN "
    "INSERT INTO automations_pendingentry (automation_id, contact_id, at)"
    " SELECT a.id, d.contact_id, NEW.at"
    " FROM automations_automation a JOIN sending_delivery d ON d.id = NEW.delivery_id"
    " WHERE a.trigger_campaign_id = NEW.campaign_id AND a.trigger = 'clicked'"
    " AND a.status IN ('active', 'paused')"
    " AND (a.trigger_url = '' OR a.trigger_url = NEW.url); END",
}


def install_triggers(conn: BaseDatabaseWrapper | None = None) -> bool:
    """Create the triggers that are missing (the migration, and after every migrate:
    SQLite drops a table's triggers when a migration rebuilds the table)."""
    conn = conn or connection
    if conn.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"automations' triggers need triggers on {conn.vendor}")
    groups = [(_PG_FUNCTIONS, _PG_TRIGGERS, _SQLITE_TRIGGERS)]
    if Recheck._meta.db_table in conn.introspection.table_names():  # from migration 0009
        groups.append((_PG_RECHECK_FUNCTIONS, _PG_RECHECK_TRIGGERS, _SQLITE_RECHECK_TRIGGERS))
    made = False
    for functions, postgresql, sqlite in groups:
        missing = triggers.missing(conn, postgresql=postgresql, sqlite=sqlite)
        if missing:
            with transaction.atomic(using=conn.alias):
                triggers.create(
                    conn, missing, functions=functions, postgresql=postgresql, sqlite=sqlite
                )
            made = True
    return made


def after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After every migrate: the triggers are there (made again if a rebuild dropped them)."""
    conn = connections[using]
    tables = conn.introspection.table_names()
    needed = (PendingEntry._meta.db_table, "audience_contact", "sending_trackingevent")
    if all(table in tables for table in needed):
        install_triggers(conn)
