"""Writing and verifying the audit log (P7)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from tidings.staff import checkpoints, db_guard
from tidings.staff.models import GENESIS_HASH, AuditEvent, AuditExpiry
from tidings.staff.people import Person

# One constant for the advisory lock that serialises appends on PostgreSQL (the database's
# expiry function takes the same one).
_CHAIN_LOCK = db_guard.CHAIN_LOCK


def _actor(by: Person | None) -> tuple[int | None, str, str]:
    if by is None:
        return None, "system", ""
    if by.is_staff:
        return by.pk, "staff", by.staff_role or ("admin" if by.is_superuser else "")
    return by.pk, "customer", ""


def record(
    action: str,
    target: models.Model | None = None,
    *,
    by: Person | None,
    fields: Iterable[str] = (),
    reason: str = "",
    account_id: int | None = None,
    target_type: str = "",
    target_id: str = "",
) -> AuditEvent:
    """Append one event to the audit log, in the caller's transaction."""
    event = _event(
        action,
        target,
        by=by,
        fields=fields,
        reason=reason,
        account_id=account_id,
        target_type=target_type,
        target_id=target_id,
    )
    _append([event])
    return event


def record_many(
    action: str,
    targets: Iterable[models.Model],
    *,
    by: Person | None,
    fields: Iterable[str] = (),
    reason: str = "",
    account_id_of: Callable[[Any], int | None] | None = None,
) -> list[AuditEvent]:
    """Append one event per target (a page of a staff list), under one lock.

    `account_id_of` names the account of a target whose account `record` cannot find by
    itself (an erasure record, say), so the event shows up in that customer's trail.
    """
    fields = list(fields)
    events = [
        _event(
            action,
            target,
            by=by,
            fields=fields,
            reason=reason,
            account_id=account_id_of(target) if account_id_of else None,
        )
        for target in targets
    ]
    _append(events)
    return events


def _event(
    action: str,
    target: models.Model | None,
    *,
    by: Person | None,
    fields: Iterable[str],
    reason: str,
    account_id: int | None,
    target_type: str = "",
    target_id: str = "",
) -> AuditEvent:
    actor_id, actor_kind, actor_role = _actor(by)
    if target is not None:
        target_type = target._meta.label
        target_id = str(target.pk)
        if account_id is None:
            account_id = _account_of(target)
    return AuditEvent(
        actor_id=actor_id,
        actor_kind=actor_kind,
        actor_role=actor_role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        account_id=account_id,
        fields=sorted(fields),
        reason=reason[:500],
    )


def _append(events: list[AuditEvent]) -> None:
    """Chain and save events in order; the lock keeps concurrent writers from forking it."""
    if not events:
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first()
        prev = last or GENESIS_HASH
        for event in events:
            event.at = timezone.now()
            event.prev_hash = prev
            event.hash = event.compute_hash()
            # One INSERT each, not bulk_create: the chain is verified in primary-key
            # order, so every row must get its key before the next one is written.
            event.save()
            prev = event.hash


# The account model, by label: the audit sits below accounts and imports none of it.
ACCOUNT_LABEL = "accounts.Account"


def _account_of(target: models.Model) -> int | None:
    if target._meta.label == ACCOUNT_LABEL:
        return int(target.pk)
    value: Any = getattr(target, "account_id", None)
    return int(value) if value is not None else None


@dataclass
class ChainReport:
    checked: int
    first_broken: AuditEvent | None
    problem: str
    head_pk: int = 0
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.first_broken is None and not self.problem


def verify_chain(batch_size: int = 2000, *, extra_checkpoints: Iterable[Path] = ()) -> ChainReport:
    """Walk the log in order; report the first entry whose hash or link does not hold,
    and any signed checkpoint the log no longer matches.

    The first entry links to the genesis hash, or, once the oldest entries have expired,
    to the last expired one's hash, kept in its AuditExpiry record. Each checkpoint (the
    data directory's, and `extra_checkpoints`, copies kept from the mail) names an entry
    and its hash: that entry must still be there, unchanged, unless an expiry removed it
    as old. So a log cut at its end, or emptied, or rewritten from some entry on with new
    hashes, fails too, though its chain holds."""
    try:
        marks = checkpoints.load_all(extra_checkpoints)
    except checkpoints.CheckpointError as error:
        return ChainReport(0, None, str(error))
    expiries = list(AuditExpiry.objects.order_by("through_pk"))
    expiry = expiries[-1] if expiries else None
    expected_prev: str = expiry.through_hash if expiry else GENESIS_HASH
    start_pk = last_pk = expiry.through_pk if expiry else 0
    problem = _expired_part_problem(marks, expiries, start_pk)
    if problem:
        return ChainReport(0, None, problem, checkpoints=len(marks))
    pending = sorted((m for m in marks if m.head_pk > start_pk), key=lambda m: m.head_pk)
    checked = 0
    while True:
        batch = list(AuditEvent.objects.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
        if not batch:
            break
        for event in batch:
            if event.prev_hash != expected_prev:
                problem = "its link to the previous entry is broken"
                if checked == 0:
                    problem += (
                        ": it does not follow the start of the log (the genesis or a "
                        "recorded expiry), so entries were removed from its start"
                    )
                return ChainReport(checked, event, problem, checkpoints=len(marks))
            if event.compute_hash() != event.hash:
                return ChainReport(
                    checked, event, "its content does not match its hash", checkpoints=len(marks)
                )
            while pending and pending[0].head_pk <= event.pk:
                mark = pending.pop(0)
                if mark.head_pk < event.pk:
                    problem = f"entry #{mark.head_pk}, seen by {mark.label()}, is missing before it"
                elif mark.head_hash != event.hash:
                    problem = f"its hash is not the one {mark.label()} recorded"
                else:
                    continue
                return ChainReport(checked, event, problem, checkpoints=len(marks))
            expected_prev = event.hash
            checked += 1
            last_pk = event.pk
    if pending:
        mark = pending[-1]
        if checked == 0:
            problem = (
                f"the log is empty, but {mark.label()} saw it reach entry #{mark.head_pk}: "
                "it was emptied"
            )
        else:
            problem = (
                f"the log ends at entry #{last_pk}, but {mark.label()} saw entry "
                f"#{mark.head_pk}: entries were removed from its end"
            )
        return ChainReport(checked, None, problem, last_pk, len(marks))
    return ChainReport(checked, None, "", last_pk, len(marks))


def _expired_part_problem(
    marks: list[checkpoints.Checkpoint], expiries: list[AuditExpiry], start_pk: int
) -> str:
    """The expiry records against the retention period and the checkpoints: an expiry
    removes only entries past their retention, it removed a checkpoint's entry only as
    old, and no expiry record a checkpoint saw may be missing."""
    # An expiry record made up to cover a deletion must still respect the retention
    # period (the current setting), and cannot be dated after today.
    for expiry in expiries:
        if expiry.at > timezone.now() + _SLACK or (
            expiry.written_before > expiry.at - _retention() + _SLACK
        ):
            return (
                f"the expiry of {expiry.at:%Y-%m-%d} removed entries written up to "
                f"{expiry.written_before:%Y-%m-%d}, before their "
                f"{settings.RETENTION['audit_years']}-year retention ended"
            )
    for mark in marks:
        if mark.expired_through_pk > start_pk:
            return (
                f"{mark.label()} saw the log begin after entry #{mark.expired_through_pk}, "
                f"the expiry records only reach #{start_pk}: expiry records were removed"
            )
        if not 0 < mark.head_pk <= start_pk:
            continue
        covering = next(e for e in expiries if e.through_pk >= mark.head_pk)
        if mark.head_pk == covering.through_pk and mark.head_hash != covering.through_hash:
            return (
                f"the expiry record of {covering.at:%Y-%m-%d} names entry "
                f"#{covering.through_pk} with another hash than {mark.label()}"
            )
        if not mark.head_at:
            continue
        written = datetime.fromisoformat(mark.head_at)
        seen = f"entry #{mark.head_pk}, written {mark.head_at[:10]} and seen by {mark.label()}"
        if written >= covering.written_before:
            return (
                f"{seen}, is gone, but the expiry of {covering.at:%Y-%m-%d} only removed "
                f"entries written before {covering.written_before:%Y-%m-%d %H:%M}"
            )
    return ""


_SLACK = timedelta(days=1)


def _retention() -> timedelta:
    return timedelta(days=365 * settings.RETENTION["audit_years"])


def expire(written_before: datetime, batch_size: int = 5000) -> int:
    """Delete the entries written before `written_before`: the oldest part of the chain,
    from its start, after recording where it now begins (the database refuses any other
    deletion). Returns how many went.

    On PostgreSQL both steps are functions of the database (db_guard.py): once `tidings
    audit protect` has run, they are the only deletion the application's role can ask
    for, and never of entries younger than the minimum retention it set."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT tidings_audit_expire(%s)", [written_before])
        deleted = 0
        with connection.cursor() as cursor:
            while True:  # in batches: short transactions, flat memory
                with transaction.atomic():
                    cursor.execute("SELECT tidings_audit_delete_expired(%s)", [batch_size])
                    count = cursor.fetchone()[0]
                if count <= 0:
                    return deleted
                deleted += count
    with transaction.atomic():
        start = (
            AuditExpiry.objects.order_by("-through_pk").values_list("through_pk", flat=True).first()
            or 0
        )
        # The oldest run written before the cutoff, as on PostgreSQL.
        stop = (
            AuditEvent.objects.filter(pk__gt=start, at__gte=written_before)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        run = AuditEvent.objects.filter(pk__gt=start)
        if stop is not None:
            run = run.filter(pk__lt=stop)
        last = run.order_by("-pk").values_list("pk", "hash").first()
        if last is not None:
            through_pk, through_hash = last
            AuditExpiry.objects.create(
                written_before=written_before,
                through_pk=through_pk,
                through_hash=through_hash,
                count=run.count(),
            )
    table = AuditEvent._meta.db_table
    expiry_table = AuditExpiry._meta.db_table
    deleted = 0
    with connection.cursor() as cursor:
        while True:  # in batches: short transactions, flat memory
            with transaction.atomic():
                cursor.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
                    f"WHERE id <= (SELECT COALESCE(MAX(through_pk), 0) FROM {expiry_table}) "
                    "ORDER BY id LIMIT %s)",
                    [batch_size],
                )
                if cursor.rowcount <= 0:
                    return deleted
                deleted += cursor.rowcount
