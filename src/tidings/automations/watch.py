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
indexed look-up of the account's automations."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from tidings.automations.models import PendingEntry
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
    missing = triggers.missing(conn, postgresql=_PG_TRIGGERS, sqlite=_SQLITE_TRIGGERS)
    if not missing:
        return False
    with transaction.atomic(using=conn.alias):
        triggers.create(
            conn,
            missing,
            functions=_PG_FUNCTIONS,
            postgresql=_PG_TRIGGERS,
            sqlite=_SQLITE_TRIGGERS,
        )
    return True


def after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After every migrate: the triggers are there (made again if a rebuild dropped them)."""
    conn = connections[using]
    tables = conn.introspection.table_names()
    needed = (PendingEntry._meta.db_table, "audience_contact", "sending_trackingevent")
    if all(table in tables for table in needed):
        install_triggers(conn)
