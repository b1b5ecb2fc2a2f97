"""The audit log's head is anchored outside the database (P7): signed checkpoints in the
data directory, mailed every day to the privacy contact, and `tidings audit verify`
fails on a log cut at its end, emptied, cut at its start, or rewritten with new hashes,
though its chain holds. The tampering is done as the database's owner (the application's
role cannot: test_audit_guard.py). On SQLite, which has no roles, this is the evidence."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from tidings.celery import app
from tidings.core import retention
from tidings.staff import audit, checkpoints, db_guard
from tidings.staff.models import AuditEvent, AuditExpiry
from tidings.staff.tasks import write_audit_checkpoint

pytestmark = pytest.mark.promise("P7")


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path) -> Path:
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    return settings.AUDIT_CHECKPOINT_DIR


@pytest.fixture
def events(customer, staff) -> list[AuditEvent]:
    return [
        audit.record(AuditEvent.Action.READ, customer, by=staff, reason=f"ticket {n}")
        for n in range(4)
    ]


def as_owner(*statements: tuple[str, list[object]]) -> None:
    """What the owner of the tables (or a superuser) can do: lift the triggers, change
    rows. Inside the test's transaction, so it is undone afterwards."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE staff_auditevent DISABLE TRIGGER USER")
        else:
            db_guard.remove(connection)
        for sql, params in statements:
            cursor.execute(sql, params)


def broken(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        call_command("audit", "verify", *options)
    assert exit_.value.code == 1
    return capsys.readouterr().err


def test_a_checkpoint_is_signed_and_the_untouched_log_verifies_against_it(events, capsys):
    path = checkpoints.write(checkpoints.current())
    data = json.loads(path.read_text())
    assert (data["head_pk"], data["head_hash"]) == (events[-1].pk, events[-1].hash)
    assert data["public_key"] == checkpoints.public_key()

    report = audit.verify_chain()
    assert report.ok and report.checkpoints == 1 and report.head_pk == events[-1].pk
    call_command("audit", "verify")
    assert "audit log OK: 4 entries, chain intact" in capsys.readouterr().out


def test_verify_fails_when_entries_were_removed_from_the_end(events, capsys):
    checkpoints.write(checkpoints.current())
    as_owner(("DELETE FROM staff_auditevent WHERE id >= %s", [events[2].pk]))

    report = audit.verify_chain()
    assert not report.ok and report.checked == 2 and report.first_broken is None
    assert f"the log ends at entry #{events[1].pk}" in report.problem
    assert f"saw entry #{events[3].pk}: entries were removed from its end" in report.problem
    assert "entries were removed from its end" in broken(capsys)


def test_verify_fails_when_the_log_was_emptied(events, capsys):
    checkpoints.write(checkpoints.current())
    as_owner(("DELETE FROM staff_auditevent", []))

    report = audit.verify_chain()
    assert not report.ok and report.checked == 0
    assert "the log is empty, but the checkpoint of " in report.problem
    assert f"saw it reach entry #{events[3].pk}: it was emptied" in report.problem
    assert "it was emptied" in broken(capsys)


def test_verify_fails_when_entries_were_removed_from_the_start(events, capsys):
    checkpoints.write(checkpoints.current())
    as_owner(("DELETE FROM staff_auditevent WHERE id <= %s", [events[1].pk]))

    report = audit.verify_chain()
    assert report.first_broken is not None and report.first_broken.pk == events[2].pk
    assert "entries were removed from its start" in report.problem
    assert f"entry id {events[2].pk}" in broken(capsys)


def test_verify_fails_when_an_entry_was_edited(events, capsys):
    checkpoints.write(checkpoints.current())
    as_owner(("UPDATE staff_auditevent SET reason = 'nothing' WHERE id = %s", [events[1].pk]))

    report = audit.verify_chain()
    assert report.first_broken is not None and report.first_broken.pk == events[1].pk
    assert "does not match its hash" in report.problem
    assert f"entry id {events[1].pk}" in broken(capsys)


def test_verify_fails_when_the_chain_was_rewritten_with_new_hashes_from_an_entry_on(events):
    """A chain can be recomputed from any entry on and hold: only the checkpoint shows it."""
    checkpoints.write(checkpoints.current())
    rewritten = list(AuditEvent.objects.filter(pk__gte=events[1].pk))
    prev = events[0].hash
    statements = []
    for event in rewritten:
        event.reason = "nothing to see" if event.pk == events[1].pk else event.reason
        event.prev_hash = prev
        event.hash = event.compute_hash()
        prev = event.hash
        statements.append(
            (
                "UPDATE staff_auditevent SET reason = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [event.reason, event.prev_hash, event.hash, event.pk],
            )
        )
    as_owner(*statements)

    report = audit.verify_chain()
    assert report.first_broken is not None and report.first_broken.pk == events[3].pk
    assert "its hash is not the one the checkpoint of" in report.problem


def test_verify_fails_when_an_expiry_record_was_made_up_to_remove_recent_entries(events):
    checkpoints.write(checkpoints.current())
    # Entries seen by the checkpoint, "expired" today as if they were old.
    AuditExpiry.objects.create(
        written_before=timezone.now(),
        through_pk=events[2].pk,
        through_hash=events[2].hash,
        count=3,
    )
    as_owner(("DELETE FROM staff_auditevent WHERE id <= %s", [events[2].pk]))

    report = audit.verify_chain()
    assert not report.ok
    assert "written up to" in report.problem
    assert "before their 3-year retention ended" in report.problem


def test_verify_fails_when_an_expiry_record_made_up_to_look_old_removed_a_seen_entry(events):
    checkpoints.write(checkpoints.current())
    AuditExpiry.objects.create(
        written_before=timezone.now() - timedelta(days=3 * 365 + 2),  # within retention
        through_pk=events[3].pk,
        through_hash=events[3].hash,
        count=4,
    )
    as_owner(("DELETE FROM staff_auditevent", []))

    problem = audit.verify_chain().problem
    assert f"entry #{events[3].pk}, written" in problem
    assert "is gone, but the expiry of" in problem


def test_an_expiry_by_the_retention_job_verifies_against_older_checkpoints(
    customer, staff, settings
):
    import time_machine

    settings.RETENTION = {**settings.RETENTION, "audit_years": 3}
    with time_machine.travel("2020-01-10 09:00Z", tick=False):
        old = [audit.record(AuditEvent.Action.READ, customer, by=staff) for _ in range(3)]
        checkpoints.write(checkpoints.current())
    new = [audit.record(AuditEvent.Action.READ, customer, by=staff) for _ in range(2)]
    checkpoints.write(checkpoints.current())

    assert retention.run("audit trail") == 3
    assert AuditExpiry.objects.get().through_pk == old[-1].pk
    checkpoints.write(checkpoints.current())
    report = audit.verify_chain()
    assert report.ok, report.problem
    assert (report.checked, report.checkpoints, report.head_pk) == (2, 3, new[-1].pk)

    # The expiry record itself removed (by the owner): the checkpoint after it shows it.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE staff_auditexpiry DISABLE TRIGGER USER")
        else:
            db_guard.remove(connection)
        cursor.execute("DELETE FROM staff_auditexpiry")
    assert "expiry records were removed" in audit.verify_chain().problem


def test_a_forged_or_damaged_checkpoint_is_refused(events, settings, capsys):
    path = checkpoints.write(checkpoints.current())
    data = json.loads(path.read_text())

    path.write_text(json.dumps({**data, "head_pk": events[1].pk}))
    assert "its signature does not match its content" in audit.verify_chain().problem

    path.write_text("{not json")
    assert "cannot be read" in broken(capsys)

    path.unlink()
    ours = settings.AUDIT_SIGNING_KEY
    settings.AUDIT_SIGNING_KEY = "A" * 43 + "="  # another key signs...
    checkpoints.write(checkpoints.current())
    settings.AUDIT_SIGNING_KEY = ours  # ...ours checks
    assert "was signed by another key" in audit.verify_chain().problem


def test_a_bad_signing_key_is_a_clear_error(events, settings):
    settings.AUDIT_SIGNING_KEY = "not a key"
    with pytest.raises(ImproperlyConfigured, match="TIDINGS_AUDIT_SIGNING_KEY must be 32"):
        checkpoints.current()


def test_the_daily_job_mails_the_checkpoint_and_a_kept_copy_catches_a_cut_tail(
    mailbox, events, settings, checkpoint_dir, tmp_path, capsys
):

    entry = app.conf.beat_schedule["audit-checkpoint"]
    assert (
        entry["task"] == write_audit_checkpoint.name == "tidings.staff.tasks.write_audit_checkpoint"
    )

    path = Path(write_audit_checkpoint.delay().get())
    assert path.parent == checkpoint_dir and path.exists()
    [mail] = mailbox
    assert mail.to == [settings.OPERATOR["privacy_email"]]
    assert f"entry #{events[-1].pk}" in mail.subject
    # The privacy contact keeps the mailed document; it checks the log by itself.
    document = mail.body[mail.body.index("{") : mail.body.rindex("}") + 1]
    kept = tmp_path / "kept.json"
    kept.write_text(document)
    assert checkpoints.load(kept) == checkpoints.load(path)

    # Whoever cuts the tail also deletes the checkpoints in the data directory...
    path.unlink()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE staff_auditevent DISABLE TRIGGER USER")
            cursor.execute("DELETE FROM staff_auditevent WHERE id = %s", [events[-1].pk])
            cursor.execute("ALTER TABLE staff_auditevent ENABLE TRIGGER USER")
        else:
            db_guard.remove(connection)
            cursor.execute("DELETE FROM staff_auditevent WHERE id = %s", [events[-1].pk])
            db_guard.install(connection)
    call_command("audit", "verify")  # ...so the data directory alone sees nothing
    capsys.readouterr()
    # ...but the mailed copy does.
    assert "entries were removed from its end" in broken(capsys, "--checkpoint", str(kept))


def test_checkpoint_command_writes_a_file(events, checkpoint_dir, capsys):
    call_command("audit", "checkpoint")
    [path] = checkpoint_dir.glob("*.json")
    assert f"checkpoint written to {path}" in capsys.readouterr().out
    assert checkpoints.load(path).head_pk == events[-1].pk
    assert checkpoints.load(path).at > (timezone.now() - timedelta(minutes=1)).isoformat()[:19]
