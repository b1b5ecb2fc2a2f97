"""Writing and verifying the audit log (P7)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.utils import timezone

from tidings.staff.models import GENESIS_HASH, AuditEvent, AuditExpiry

if TYPE_CHECKING:
    from tidings.accounts.models import User

# One constant for the advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK = 0x7715D1A6


def _actor(by: User | None) -> tuple[int | None, str, str]:
    if by is None:
        return None, "system", ""
    if by.is_staff:
        return by.pk, "staff", by.staff_role or ("admin" if by.is_superuser else "")
    return by.pk, "customer", ""


def record(
    action: str,
    target: models.Model | None = None,
    *,
    by: User | None,
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
    by: User | None,
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
    by: User | None,
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

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify_chain(batch_size: int = 2000) -> ChainReport:
    """Walk the log in order; report the first entry whose hash or link does not hold.

    The first entry links to the genesis hash, or, once the oldest entries have expired,
    to the last expired one's hash, kept in its AuditExpiry record."""
    expiry = AuditExpiry.objects.order_by("-through_pk").first()
    expected_prev: str | None = expiry.through_hash if expiry else GENESIS_HASH
    checked = 0
    last_pk = expiry.through_pk if expiry else 0
    while True:
        batch = list(AuditEvent.objects.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
        if not batch:
            return ChainReport(checked, None, "")
        for event in batch:
            if expected_prev is not None and event.prev_hash != expected_prev:
                return ChainReport(checked, event, "its link to the previous entry is broken")
            if event.compute_hash() != event.hash:
                return ChainReport(checked, event, "its content does not match its hash")
            expected_prev = event.hash
            checked += 1
            last_pk = event.pk


def expire(written_before: datetime, batch_size: int = 5000) -> int:
    """Delete the entries written before `written_before`: the oldest part of the chain,
    from its start, after recording where it now begins (the database refuses any other
    deletion). Returns how many went."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = (
            AuditEvent.objects.filter(at__lt=written_before)
            .order_by("-pk")
            .values_list("pk", "hash")
            .first()
        )
        if last is None:
            return 0
        through_pk, through_hash = last
        start = AuditExpiry.objects.order_by("-through_pk").values_list("through_pk", flat=True)
        count = AuditEvent.objects.filter(pk__gt=start.first() or 0, pk__lte=through_pk).count()
        AuditExpiry.objects.create(
            written_before=written_before,
            through_pk=through_pk,
            through_hash=through_hash,
            count=count,
        )
    table = AuditEvent._meta.db_table
    deleted = 0
    with connection.cursor() as cursor:
        while True:  # in batches: short transactions, flat memory
            with transaction.atomic():
                cursor.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
                    "WHERE id <= %s ORDER BY id LIMIT %s)",
                    [through_pk, batch_size],
                )
                if cursor.rowcount <= 0:
                    return deleted
                deleted += cursor.rowcount
