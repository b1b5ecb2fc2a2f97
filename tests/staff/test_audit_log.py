"""The audit log cannot be edited, by staff, by code or by SQL, and tampering shows (P7)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from tests.factories import StaffFactory
from tests.staff.conftest import log_in_verified, state_reason
from tidings import cli
from tidings.core import retention
from tidings.staff import audit
from tidings.staff.models import AppendOnlyError, AuditEvent, AuditExpiry

pytestmark = pytest.mark.promise("P7")

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the triggers under test are PostgreSQL's"
)


@pytest.fixture
def events(customer, staff) -> list[AuditEvent]:
    return [
        audit.record(
            AuditEvent.Action.READ, customer, by=staff, fields=["name"], reason=f"ticket {n}"
        )
        for n in range(3)
    ]


def test_an_audit_event_cannot_be_changed_or_deleted_through_the_orm(events):
    event = events[0]
    event.reason = "nothing to see"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="nothing")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["reason"])
    assert AuditEvent.objects.get(pk=event.pk).reason == "ticket 0"


@needs_postgresql
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE staff_auditevent SET reason = 'nothing to see' WHERE id = %s",
        "DELETE FROM staff_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_raw_sql_update_and_delete(events, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [events[0].pk])
    assert AuditEvent.objects.filter(pk=events[0].pk, reason="ticket 0").exists()


@needs_postgresql
def test_the_database_refuses_to_truncate_the_audit_log(events):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE staff_auditevent")
    assert AuditEvent.objects.count() == 3


def test_verify_chain_holds_for_an_untouched_log(events):
    report = audit.verify_chain()
    assert report.ok
    assert report.checked == AuditEvent.objects.count()


def test_audit_verify_reports_an_intact_chain(events, capsys):
    call_command("audit", "verify")
    assert (
        f"audit log OK: {AuditEvent.objects.count()} entries, chain intact"
        in capsys.readouterr().out
    )


def tamper(event: AuditEvent, reason: str) -> None:
    """What someone with the database owner's rights could do: lift the trigger, rewrite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE staff_auditevent DISABLE TRIGGER USER")
        cursor.execute("UPDATE staff_auditevent SET reason = %s WHERE id = %s", [reason, event.pk])


@needs_postgresql
def test_verify_chain_names_the_tampered_entry_and_the_command_exits_1(events, capsys):
    tamper(events[1], "nothing to see")

    report = audit.verify_chain()
    assert report.first_broken is not None
    assert report.first_broken.pk == events[1].pk
    assert "does not match its hash" in report.problem

    with pytest.raises(SystemExit) as exit_:
        call_command("audit", "verify")
    assert exit_.value.code == 1
    assert f"entry id {events[1].pk}" in capsys.readouterr().err


@needs_postgresql
def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link(events):
    event = AuditEvent.objects.get(pk=events[1].pk)
    event.reason = "nothing to see"
    tamper(event, event.reason)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE staff_auditevent SET hash = %s WHERE id = %s", [event.compute_hash(), event.pk]
        )

    report = audit.verify_chain()
    assert report.first_broken is not None
    assert report.first_broken.pk == events[2].pk
    assert "link" in report.problem


def test_the_tidings_cli_maps_the_verdict_to_its_exit_code(events):

    assert cli.main(["audit", "verify"]) == 0


def test_nobody_changes_the_log_in_the_console_not_even_a_superuser(client, events):

    root = StaffFactory(email="root@operator.example", staff_role="admin", is_superuser=True)
    log_in_verified(client, root)
    state_reason(client)
    url = f"/staff/admin/staff/auditevent/{events[0].pk}/"
    assert client.get(url + "change/").status_code == 200
    assert client.post(url + "change/", {"reason": "nothing"}).status_code == 403
    assert client.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert client.get("/staff/admin/staff/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=events[0].pk).reason == "ticket 0"


# --- retention: the oldest entries expire, the rest still verify (P12) -------------------


@pytest.fixture
def old_and_new(customer, staff) -> tuple[list[AuditEvent], list[AuditEvent]]:
    import time_machine

    with time_machine.travel("2020-01-10 09:00Z", tick=False):
        old = [
            audit.record(AuditEvent.Action.READ, customer, by=staff, reason=f"old {n}")
            for n in range(3)
        ]
    new = [
        audit.record(AuditEvent.Action.READ, customer, by=staff, reason=f"new {n}")
        for n in range(2)
    ]
    return old, new


@pytest.mark.promise("P12")
def test_the_retention_job_deletes_entries_past_their_period_and_the_chain_still_holds(
    old_and_new, settings
):

    settings.RETENTION = {**settings.RETENTION, "audit_years": 3}
    old, new = old_and_new
    preview = {o.rule.name: o.count for o in retention.apply_all(dry_run=True)}
    assert preview["audit trail"] == 3
    assert AuditEvent.objects.count() == 5

    assert retention.run("audit trail") == 3

    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [e.pk for e in new]
    expiry = AuditExpiry.objects.get()
    assert (expiry.through_pk, expiry.through_hash, expiry.count) == (old[-1].pk, old[-1].hash, 3)
    report = audit.verify_chain()
    assert report.ok and report.checked == 2
    assert retention.run("audit trail") == 0  # nothing more has expired


@needs_postgresql
def test_after_an_expiry_newer_entries_and_the_expiry_record_still_cannot_be_deleted(old_and_new):

    _old, new = old_and_new
    audit.expire(new[0].at)
    for sql, pk in [
        ("DELETE FROM staff_auditevent WHERE id = %s", new[0].pk),
        ("DELETE FROM staff_auditexpiry WHERE id = %s", AuditExpiry.objects.get().pk),
        (
            "UPDATE staff_auditexpiry SET through_pk = 999999 WHERE id = %s",
            AuditExpiry.objects.get().pk,
        ),
    ]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [pk])
    assert AuditEvent.objects.count() == 2 and AuditExpiry.objects.count() == 1


@needs_postgresql
def test_oldest_entries_deleted_without_an_expiry_record_break_the_chain(old_and_new):
    old, new = old_and_new
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE staff_auditevent DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM staff_auditevent WHERE id <= %s", [old[-1].pk])

    report = audit.verify_chain()
    assert report.first_broken is not None and report.first_broken.pk == new[0].pk
    assert "link" in report.problem
