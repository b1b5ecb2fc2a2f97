"""The database's own refusal to change the audit log (P7), below the ORM.

The ORM already refuses (AppendOnlyError); these triggers refuse the same to raw SQL, a
database console or a bug in some other code path. They do not stop a database owner who
drops them: that is what `tidings audit verify` and its hash chain are for.

The SQL lives here, not in the migration, because `flush` needs it too. Changing it
means writing a new migration that runs `install` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "staff_auditevent"
EXPIRY = "staff_auditexpiry"
# Set (per session) only by `flush`, which wipes the whole database on purpose.
MAINTENANCE_SETTING = "tidings.audit_maintenance"

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION tidings_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' AND current_setting('{MAINTENANCE_SETTING}', true) = 'on' THEN
            RETURN NULL;
        END IF;
        -- The retention job deletes the oldest entries, at or below a recorded expiry.
        IF TG_OP = 'DELETE' AND TG_TABLE_NAME = '{TABLE}' AND OLD.id <= (
            SELECT COALESCE(MAX(through_pk), 0) FROM {EXPIRY}
        ) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END;
    $$
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION tidings_audit_append_only()
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION tidings_audit_append_only()
    """,
    f"""
    CREATE TRIGGER {EXPIRY}_append_only
    BEFORE UPDATE OR DELETE ON {EXPIRY}
    FOR EACH ROW EXECUTE FUNCTION tidings_audit_append_only()
    """,
    f"""
    CREATE TRIGGER {EXPIRY}_no_truncate
    BEFORE TRUNCATE ON {EXPIRY}
    FOR EACH STATEMENT EXECUTE FUNCTION tidings_audit_append_only()
    """,
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {EXPIRY}_no_truncate ON {EXPIRY}",
    f"DROP TRIGGER IF EXISTS {EXPIRY}_append_only ON {EXPIRY}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    "DROP FUNCTION IF EXISTS tidings_audit_append_only()",
]
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    WHEN OLD.id > (SELECT COALESCE(MAX(through_pk), 0) FROM {EXPIRY})
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {EXPIRY}_no_update BEFORE UPDATE ON {EXPIRY}
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {EXPIRY}_no_delete BEFORE DELETE ON {EXPIRY}
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END
    """,
]
SQLITE_BEFORE_EXPIRY = [
    SQLITE_INSTALL[0],
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END
    """,
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {EXPIRY}_no_update",
    f"DROP TRIGGER IF EXISTS {EXPIRY}_no_delete",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]


def _run(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install(connection: BaseDatabaseWrapper) -> None:
    # Before migration staff.0003 there is no expiry table: no deletion is allowed then.
    with_expiry = EXPIRY in connection.introspection.table_names()
    if connection.vendor == "postgresql":
        _run(connection, POSTGRESQL_INSTALL if with_expiry else POSTGRESQL_INSTALL[:3])
    elif connection.vendor == "sqlite":
        _run(connection, SQLITE_INSTALL if with_expiry else SQLITE_BEFORE_EXPIRY)


def remove(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor == "postgresql":
        _run(connection, POSTGRESQL_REMOVE)
    elif connection.vendor == "sqlite":
        _run(connection, SQLITE_REMOVE)


@contextmanager
def whole_database_wipe(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Let `flush` empty the audit log along with every other table, and nothing else.

    PostgreSQL: TRUNCATE is allowed for this session while the block runs (UPDATE and
    DELETE stay refused). SQLite flushes with DELETE and has no session settings, so the
    triggers are lifted and put back.
    """
    if connection.vendor == "postgresql":
        _run(connection, [f"SELECT set_config('{MAINTENANCE_SETTING}', 'on', false)"])
        try:
            yield
        finally:
            _run(connection, [f"SELECT set_config('{MAINTENANCE_SETTING}', '', false)"])
    elif connection.vendor == "sqlite":
        remove(connection)
        try:
            yield
        finally:
            install(connection)
    else:
        yield
