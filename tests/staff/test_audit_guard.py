"""On PostgreSQL the application's role cannot change the audit log, whatever SQL it
sends (P7): the log belongs to an owner role of its own (`tidings audit protect`), the
triggers cannot be lifted by a session setting, and the one deletion left is retention,
through the owner's functions, never of entries younger than the minimum retention.

These tests log in as such a role, made by a fixture: not a superuser, not the owner of
the audit tables, with the rights on every other table that Tidings needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from tidings.core import retention
from tidings.staff import audit, db_guard
from tidings.staff.models import AuditEvent, AuditExpiry

pytestmark = [
    pytest.mark.promise("P7"),
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="roles are PostgreSQL's"),
]

APP_ROLE = "tidings_test_app"
APP_PASSWORD = "app-role-of-the-tests"
OWNER_ROLE = "tidings_test_audit_owner"


@pytest.fixture(scope="session")
def app_role(django_db_setup, django_db_blocker) -> str:  # type: ignore[no-untyped-def]
    """The application's role as production has it: a login role that may read and
    write every table but the audit log, which `protect` gives to its own owner.
    (Roles belong to the cluster: made once, kept, shared by parallel test databases.)"""
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                f"DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            cursor.execute(
                f"DO $$ BEGIN CREATE ROLE {OWNER_ROLE} NOLOGIN; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            cursor.execute(f"ALTER ROLE {APP_ROLE} NOSUPERUSER NOCREATEROLE NOCREATEDB")
            cursor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}"
            )
            cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
        db_guard.protect(connection, app_role=APP_ROLE, owner_role=OWNER_ROLE)
    return APP_ROLE


def _protect(days: int) -> None:
    db_guard.protect(connection, app_role=APP_ROLE, owner_role=OWNER_ROLE, min_retention_days=days)


@pytest.fixture
def three_year_minimum(transactional_db, app_role) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """`protect` as the operator runs it: entries younger than 3 years never expire."""
    _protect(3 * 365)
    yield
    _protect(0)


@pytest.fixture
def as_app_role(transactional_db, app_role) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The test's database connection logs in as the application's role."""
    settings_dict = connection.settings_dict
    saved = settings_dict["USER"], settings_dict["PASSWORD"]
    OWNER_LOGIN.update(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        dbname=settings_dict["NAME"],
        user=saved[0],
        password=saved[1] or None,
        autocommit=True,
    )
    connection.close()
    settings_dict["USER"], settings_dict["PASSWORD"] = app_role, APP_PASSWORD
    try:
        yield
    finally:
        connection.close()
        settings_dict["USER"], settings_dict["PASSWORD"] = saved


# The suite's own login (a superuser), for what only it may do while a test runs as the
# application's role.
OWNER_LOGIN: dict[str, object] = {}


def as_superuser(sql: str) -> None:
    import psycopg

    with psycopg.connect(**OWNER_LOGIN) as su:  # type: ignore[arg-type]
        su.execute(sql)


@pytest.fixture
def events(as_app_role, customer, staff) -> list[AuditEvent]:
    return [
        audit.record(AuditEvent.Action.READ, customer, by=staff, reason=f"ticket {n}")
        for n in range(3)
    ]


def _one(sql: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _unchanged(events: list[AuditEvent]) -> None:
    assert list(AuditEvent.objects.values_list("pk", "reason", "hash")) == [
        (e.pk, e.reason, e.hash) for e in events
    ]
    assert not AuditExpiry.objects.exists()
    assert db_guard.triggers_hold(connection) == []
    assert audit.verify_chain().ok


def test_the_application_role_is_neither_superuser_nor_owner_and_may_read_and_append(events):
    assert _one("SELECT current_user") == APP_ROLE
    assert _one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    assert _one("SELECT tableowner FROM pg_tables WHERE tablename = 'staff_auditevent'") == (
        OWNER_ROLE
    )
    assert _one("SELECT tableowner FROM pg_tables WHERE tablename = 'staff_auditexpiry'") == (
        OWNER_ROLE
    )
    guard = db_guard.status(connection)
    assert guard.protected, guard.problems
    # What Tidings does with the log works as this role: append, verify.
    assert AuditEvent.objects.count() == 3
    report = audit.verify_chain()
    assert report.ok and report.checked == 3


ATTACKS = [
    "UPDATE staff_auditevent SET reason = 'nothing to see' WHERE id = {pk}",
    "DELETE FROM staff_auditevent WHERE id = {pk}",
    "TRUNCATE staff_auditevent",
    "TRUNCATE staff_auditevent, staff_auditexpiry",
    "ALTER TABLE staff_auditevent DISABLE TRIGGER USER",
    "ALTER TABLE staff_auditevent DISABLE TRIGGER staff_auditevent_append_only",
    "DROP TRIGGER staff_auditevent_append_only ON staff_auditevent",
    "DROP TABLE staff_auditevent",
    "ALTER TABLE staff_auditevent RENAME TO staff_auditevent_old",
    "ALTER TABLE staff_auditevent OWNER TO " + APP_ROLE,
    "INSERT INTO staff_auditexpiry (at, written_before, through_pk, through_hash, count) "
    "VALUES (now(), now(), {pk}, 'x', 1)",
    "CREATE OR REPLACE FUNCTION tidings_audit_min_retention() RETURNS integer "
    "LANGUAGE sql AS $$ SELECT 0 $$",
    "DROP FUNCTION tidings_audit_append_only() CASCADE",
    "SET ROLE " + OWNER_ROLE,
    "GRANT " + OWNER_ROLE + " TO " + APP_ROLE,
]


def test_the_application_role_cannot_change_or_unguard_the_log(events):
    # One test, each attack in its own savepoint: every test here commits, and so pays
    # for emptying the database after it.
    for sql in ATTACKS:
        with (
            pytest.raises(DatabaseError),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql.format(pk=events[-1].pk))
        _unchanged(events)


def test_the_maintenance_setting_lifts_nothing_for_the_application_role(events):
    for lift in [
        "SET tidings.audit_maintenance = 'on'",
        "SELECT set_config('tidings.audit_maintenance', 'on', false)",
    ]:
        for sql in [
            "UPDATE staff_auditevent SET reason = 'nothing to see' WHERE id = {pk}",
            "DELETE FROM staff_auditevent WHERE id = {pk}",
            "TRUNCATE staff_auditevent",
        ]:
            with connection.cursor() as cursor:
                cursor.execute(lift)  # any session may set a custom setting...
                assert _one("SELECT current_setting('tidings.audit_maintenance')") == "on"
                with pytest.raises(DatabaseError), transaction.atomic():  # ...it opens nothing
                    cursor.execute(sql.format(pk=events[0].pk))
                cursor.execute("RESET tidings.audit_maintenance")
            _unchanged(events)

    # Even a role granted TRUNCATE by mistake cannot use the setting: only a role that
    # could lift the guard anyway (its owner, a superuser) may, for `flush`.
    as_superuser(f"GRANT TRUNCATE ON staff_auditevent TO {APP_ROLE}")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET tidings.audit_maintenance = 'on'")
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute("TRUNCATE staff_auditevent")
            cursor.execute("RESET tidings.audit_maintenance")
    finally:
        as_superuser(f"REVOKE TRUNCATE ON staff_auditevent FROM {APP_ROLE}")
    _unchanged(events)


def test_retention_runs_as_the_application_role_but_never_takes_young_entries(
    three_year_minimum, as_app_role, customer, staff, settings
):
    import time_machine

    with time_machine.travel("2020-01-10 09:00Z", tick=False):
        old = [audit.record(AuditEvent.Action.READ, customer, by=staff) for _ in range(2)]
    new = [audit.record(AuditEvent.Action.READ, customer, by=staff) for _ in range(2)]
    settings.RETENTION = {**settings.RETENTION, "audit_years": 3}

    assert retention.run("audit trail") == 2  # the job, through the owner's functions
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [e.pk for e in new]
    assert AuditExpiry.objects.get().through_pk == old[-1].pk

    # Asked by hand to expire everything up to tomorrow, or with a 1-day retention: the
    # database keeps what is younger than the minimum `protect` set.
    assert audit.expire(new[-1].at) == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT tidings_audit_expire(now() + interval '1 day')")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT tidings_audit_delete_expired(1000000)")
        assert cursor.fetchone()[0] == 0
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [e.pk for e in new]
    assert AuditExpiry.objects.count() == 1
    assert audit.verify_chain().ok


def test_verify_as_the_application_role_says_the_guard_is_in_place(events, capsys):
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert f"guard in place: the audit tables belong to {OWNER_ROLE}" in out
    assert "audit log OK: 3 entries, chain intact" in out


def test_verify_as_the_owner_says_the_guard_is_not_in_place_for_it(db, capsys):
    call_command("audit", "verify")  # the test suite's own role: a superuser
    assert "guard NOT in place: you (" in capsys.readouterr().out


def test_verify_fails_when_a_trigger_was_lifted(db, capsys):
    with connection.cursor() as cursor:  # as the superuser: it can, and it shows
        cursor.execute("ALTER TABLE staff_auditevent DISABLE TRIGGER staff_auditevent_no_truncate")
    with pytest.raises(SystemExit) as exit_:
        call_command("audit", "verify")
    assert exit_.value.code == 1
    assert "trigger staff_auditevent_no_truncate on staff_auditevent is missing or disabled" in (
        capsys.readouterr().err
    )


def test_protect_refuses_bad_input_and_changes_nothing(transactional_db, app_role):
    before = _one("SELECT tableowner FROM pg_tables WHERE tablename = 'staff_auditevent'")
    for options, message in [
        ([], "protect needs --app-role"),
        (["--app-role", "x; DROP TABLE staff_auditevent"], "is not a plain role name"),
        (["--app-role", APP_ROLE, "--owner", APP_ROLE], "cannot be the audit tables' owner"),
        (["--app-role", "tidings_no_such_role_here"], "no role tidings_no_such_role_here"),
        (["--app-role", "postgres"], "postgres is a superuser"),
        (["--app-role", APP_ROLE, "--min-retention-days", "-1"], "cannot be negative"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("audit", "protect", *options)
        assert (
            _one("SELECT tableowner FROM pg_tables WHERE tablename = 'staff_auditevent'") == before
        )
        assert _one("SELECT tidings_audit_min_retention()") == 0


def test_protect_from_the_command_line_is_idempotent(transactional_db, app_role, capsys):
    for _ in range(2):
        call_command(
            "audit", "protect", "--app-role", APP_ROLE, "--owner", OWNER_ROLE,
            "--min-retention-days", "0",
        )  # fmt: skip
    assert f"audit log protected: owned by {OWNER_ROLE}" in capsys.readouterr().out
    assert _one("SELECT tableowner FROM pg_tables WHERE tablename = 'staff_auditevent'") == (
        OWNER_ROLE
    )
