"""The database's own refusal to change the audit log (P7), below the ORM.

The ORM already refuses (AppendOnlyError); these triggers refuse the same to raw SQL, a
database console or a bug in some other code path. A trigger does not stop whoever owns
the table (the owner may disable or drop it), so on PostgreSQL `protect` hands the audit
tables to an owner role of their own: the application's role keeps SELECT and INSERT on
the log, SELECT on the expiry records, and two SECURITY DEFINER functions for the one
deletion the log allows (retention, oldest first, recorded). What even the owner can do
is caught by `tidings audit verify`: the hash chain and the signed checkpoints outside
the database (`checkpoints.py`). The threat model: docs/operator.md, "The audit log".

The SQL lives here, not in the migrations, because `flush` and `protect` need it too.
Changing it means writing a new migration that runs `install` again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "staff_auditevent"
EXPIRY = "staff_auditexpiry"
# Honoured only for a session whose role could lift the guard anyway (a superuser or the
# tables' owner), and only for TRUNCATE: `flush`, which wipes the whole database on
# purpose (the test suite between tests). For the application's role it changes nothing.
MAINTENANCE_SETTING = "tidings.audit_maintenance"
# One constant for the advisory lock that serialises appends and expiries.
CHAIN_LOCK = 0x7715D1A6

TRIGGER_FUNCTION = "tidings_audit_append_only()"
EXPIRE_FUNCTION = "tidings_audit_expire(timestamptz)"
DELETE_FUNCTION = "tidings_audit_delete_expired(integer)"
RETENTION_FUNCTION = "tidings_audit_min_retention()"
TRIGGERS = {
    TABLE: (f"{TABLE}_append_only", f"{TABLE}_no_truncate"),
    EXPIRY: (f"{EXPIRY}_append_only", f"{EXPIRY}_no_truncate"),
}

_TRIGGER_SQL = f"""
    CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION} RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' AND current_setting('{MAINTENANCE_SETTING}', true) = 'on'
           AND pg_has_role(current_user,
                           (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
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
"""


def _definer_sql(schema: str, min_retention_days: int) -> list[str]:
    """The one deletion the application may ask for, as functions that run with the
    owner's rights and do only that: record an expiry (never of entries younger than the
    minimum retention fixed by `protect`), then delete what an expiry record covers."""
    path = f"SET search_path = {schema}, pg_temp"
    return [
        f"""
        CREATE OR REPLACE FUNCTION {RETENTION_FUNCTION} RETURNS integer
        LANGUAGE sql IMMUTABLE {path} AS $$ SELECT {int(min_retention_days)} $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION tidings_audit_expire(written_before timestamptz)
        RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
        DECLARE
            cutoff timestamptz := LEAST(
                written_before, now() - make_interval(days => tidings_audit_min_retention())
            );
            start_pk bigint;
            stop_pk bigint;
            last_pk bigint;
            last_hash varchar;
            n bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock({CHAIN_LOCK});
            SELECT COALESCE(MAX(through_pk), 0) INTO start_pk FROM {EXPIRY};
            -- The oldest run of entries written before the cutoff: an entry with an
            -- earlier date after a newer one (a forged one) does not stretch it.
            SELECT MIN(id) INTO stop_pk FROM {TABLE} WHERE id > start_pk AND at >= cutoff;
            SELECT id, hash INTO last_pk, last_hash FROM {TABLE}
                WHERE id > start_pk AND (stop_pk IS NULL OR id < stop_pk)
                ORDER BY id DESC LIMIT 1;
            IF last_pk IS NULL THEN
                RETURN 0;
            END IF;
            SELECT count(*) INTO n FROM {TABLE} WHERE id > start_pk AND id <= last_pk;
            INSERT INTO {EXPIRY} (at, written_before, through_pk, through_hash, count)
                VALUES (now(), cutoff, last_pk, last_hash, n);
            RETURN n;
        END;
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION tidings_audit_delete_expired(batch integer)
        RETURNS integer LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
        DECLARE
            n integer;
        BEGIN
            DELETE FROM {TABLE} WHERE id IN (
                SELECT id FROM {TABLE}
                WHERE id <= (SELECT COALESCE(MAX(through_pk), 0) FROM {EXPIRY})
                ORDER BY id LIMIT LEAST(GREATEST(batch, 0), 50000)
            );
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN n;
        END;
        $$
        """,
        # Nobody but the owner until `protect` grants it to the application's role.
        f"REVOKE ALL ON FUNCTION {EXPIRE_FUNCTION}, {DELETE_FUNCTION} FROM PUBLIC",
    ]


def _trigger_statements(table: str) -> list[str]:
    row, statement = TRIGGERS[table]
    return [
        f"""
        CREATE TRIGGER {row} BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {TRIGGER_FUNCTION}
        """,
        f"""
        CREATE TRIGGER {statement} BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER_FUNCTION}
        """,
    ]


POSTGRESQL_REMOVE = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {t}" for t, names in TRIGGERS.items() for name in names),
    f"DROP FUNCTION IF EXISTS {TRIGGER_FUNCTION}",
    f"DROP FUNCTION IF EXISTS {EXPIRE_FUNCTION}",
    f"DROP FUNCTION IF EXISTS {DELETE_FUNCTION}",
    f"DROP FUNCTION IF EXISTS {RETENTION_FUNCTION}",
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


def _schema(connection: BaseDatabaseWrapper) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return str(connection.ops.quote_name(cursor.fetchone()[0]))


def install(connection: BaseDatabaseWrapper) -> None:
    # Before migration staff.0003 there is no expiry table: no deletion is allowed then.
    with_expiry = EXPIRY in connection.introspection.table_names()
    if connection.vendor == "postgresql":
        statements = [_TRIGGER_SQL, *_trigger_statements(TABLE)]
        if with_expiry:
            statements += _trigger_statements(EXPIRY) + _definer_sql(_schema(connection), 0)
        _run(connection, statements)
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

    PostgreSQL: TRUNCATE is allowed while the block runs, for this session, if its role
    could lift the guard anyway (a superuser, the owner); UPDATE and DELETE stay refused,
    and the application's role, which has no TRUNCATE right on a protected log, cannot
    flush it. SQLite flushes with DELETE and has no session settings, so the triggers
    are lifted and put back.
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


# --- protection on PostgreSQL: an owner role of the log's own ------------------------------


class GuardError(Exception):
    """`protect` refused; nothing was changed."""


_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class GuardStatus:
    protected: bool
    owner: str
    you: str
    problems: list[str]

    def describe(self) -> str:
        if self.protected:
            return (
                f"guard in place: the audit tables belong to {self.owner}; you ({self.you}) "
                "may only read and append"
            )
        return "guard NOT in place: " + "; ".join(self.problems)


def _one(connection: BaseDatabaseWrapper, sql: str, params: list[str] | None = None) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


def status(connection: BaseDatabaseWrapper) -> GuardStatus:
    """Whether the connected role could change the log, and whether the triggers hold."""
    owner = str(_one(connection, f"SELECT tableowner FROM pg_tables WHERE tablename = '{TABLE}'"))
    you = str(_one(connection, "SELECT current_user"))
    problems = []
    if _one(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        problems.append(f"you ({you}) are a superuser")
    elif _one(connection, "SELECT pg_has_role(current_user, %s, 'MEMBER')", [owner]):
        problems.append(
            f"you ({you}) own the audit tables and could lift their triggers: run "
            "`tidings audit protect` as a privileged role (docs/operator.md)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname IN (%s, %s) AND NOT t.tgisinternal",
            [TABLE, EXPIRY],
        )
        found = {(table, name): enabled for table, name, enabled in cursor.fetchall()}
    for table, names in TRIGGERS.items():
        for name in names:
            if found.get((table, name)) in (None, "D"):
                problems.append(f"trigger {name} on {table} is missing or disabled")
    return GuardStatus(protected=not problems, owner=owner, you=you, problems=problems)


def triggers_hold(connection: BaseDatabaseWrapper) -> list[str]:
    """The triggers that are missing or disabled (PostgreSQL; empty elsewhere)."""
    if connection.vendor != "postgresql":
        return []
    return [p for p in status(connection).problems if p.startswith("trigger ")]


def protect(
    connection: BaseDatabaseWrapper,
    *,
    app_role: str,
    owner_role: str = "tidings_audit",
    min_retention_days: int = 0,
) -> list[str]:
    """Hand the audit tables to `owner_role` (created NOLOGIN if missing) and leave
    `app_role` only what the application needs. Run by a superuser (or a role that owns
    the tables and may create roles), once after `migrate`, again after a migration of
    the audit tables. Idempotent; all or nothing. Returns what still lets `app_role`
    remove the log wholesale (owning the schema), for the operator to fix."""
    if connection.vendor != "postgresql":
        raise GuardError(
            "roles exist only on PostgreSQL; on SQLite the checkpoints are the evidence"
        )
    for name, what in ((app_role, "--app-role"), (owner_role, "--owner")):
        if not _ROLE.fullmatch(name or ""):
            raise GuardError(f"{what} {name!r} is not a plain role name (a-z, 0-9, _)")
    if app_role == owner_role:
        raise GuardError("the application's role cannot be the audit tables' owner")
    if min_retention_days < 0:
        raise GuardError("--min-retention-days cannot be negative")
    if not _one(connection, "SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role]):
        raise GuardError(f"no role {app_role} in this cluster: create it first (docs/operator.md)")
    if _one(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role]):
        raise GuardError(f"{app_role} is a superuser: nothing can be protected from it")
    if _one(connection, "SELECT 1 FROM pg_roles WHERE rolname = %s", [owner_role]) and _one(
        connection, "SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner_role]
    ):
        raise GuardError(f"{app_role} is a member of {owner_role}: it would own the log")
    if _one(connection, "SELECT current_user") == app_role:
        raise GuardError(
            f"you are connected as {app_role}: run protect with a privileged role's DATABASE_URL"
        )
    quote = connection.ops.quote_name
    app, own = quote(app_role), quote(owner_role)
    functions = [TRIGGER_FUNCTION, EXPIRE_FUNCTION, DELETE_FUNCTION, RETENTION_FUNCTION]
    try:
        with transaction.atomic(using=connection.alias):
            if not _one(connection, "SELECT 1 FROM pg_roles WHERE rolname = %s", [owner_role]):
                _run(connection, [f"CREATE ROLE {own} NOLOGIN"])
            # The minimum retention is baked into a function only the owner may replace.
            _run(connection, _definer_sql(_schema(connection), min_retention_days))
            sequences = [
                str(_one(connection, "SELECT pg_get_serial_sequence(%s, 'id')", [t]))
                for t in (TABLE, EXPIRY)
            ]
            _run(
                connection,
                [
                    f"ALTER TABLE {TABLE} OWNER TO {own}",  # owned sequences follow
                    f"ALTER TABLE {EXPIRY} OWNER TO {own}",
                    *(f"ALTER FUNCTION {f} OWNER TO {own}" for f in functions),
                    f"REVOKE ALL ON TABLE {TABLE}, {EXPIRY} FROM PUBLIC, {app}",
                    f"REVOKE ALL ON SEQUENCE {', '.join(sequences)} FROM PUBLIC, {app}",
                    f"GRANT SELECT, INSERT ON TABLE {TABLE} TO {app}",
                    f"GRANT USAGE ON SEQUENCE {sequences[0]} TO {app}",
                    f"GRANT SELECT ON TABLE {EXPIRY} TO {app}",
                    f"REVOKE ALL ON FUNCTION {EXPIRE_FUNCTION}, {DELETE_FUNCTION} FROM PUBLIC",
                    f"GRANT EXECUTE ON FUNCTION {EXPIRE_FUNCTION}, {DELETE_FUNCTION} TO {app}",
                ],
            )
    except Exception as error:
        raise GuardError(f"protect failed, nothing was changed: {error}".strip()) from error
    warnings = []
    schema_owner = str(
        _one(
            connection,
            "SELECT n.nspowner::regrole::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s::regclass",
            [TABLE],
        )
    )
    if _one(connection, "SELECT pg_has_role(%s, %s::regrole, 'MEMBER')", [app_role, schema_owner]):
        warnings.append(
            f"{app_role} owns the schema of the audit tables (through {schema_owner}), so it "
            "could still DROP them (verify would report the loss against the checkpoints). "
            f"Give the schema and the database to another role, e.g. ALTER SCHEMA public OWNER "
            f"TO {owner_role}; ALTER DATABASE <name> OWNER TO {owner_role}; GRANT CREATE, USAGE "
            f"ON SCHEMA public TO {app_role}; GRANT CREATE ON DATABASE <name> TO {app_role}"
        )
    return warnings
