"""Erasure and legal holds, driven by the data map (P13, P14, P17, P19)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from tidings.accounts.models import Account
from tidings.core import datamap
from tidings.core.collection import Collection
from tidings.core.datamap import Erasure
from tidings.core.digests import email_digest
from tidings.core.mail import send_templated
from tidings.privacy.models import CollectionRecord, ErasureRecord, SuppressedEmail
from tidings.privacy.plain_delete import delete_rows
from tidings.privacy.portability import delete_archives_of
from tidings.staff import audit

log = logging.getLogger(__name__)

# Rows per transaction while erasing: small enough to keep locks and the deferred
# foreign-key checks of one commit short, large enough that the per-statement cost is
# small beside the rows' (bench/run.py erasure).
ERASURE_BATCH = 10_000


def record_collection(sender: Any, *, collection: Collection, **kwargs: Any) -> None:
    """The record of a point of collection (P2): one row per piece of data collected,
    with its purpose and legal basis (connected to `core.collection` in ready())."""
    CollectionRecord.objects.bulk_create(
        CollectionRecord(
            account=collection.account,
            user=collection.user,
            point=collection.point,
            data_collected=[item.what],
            purpose=item.purpose,
            legal_basis=item.legal_basis,
        )
        for item in collection.items
    )


def is_suppressed(email: str) -> bool:
    return SuppressedEmail.objects.filter(digest=email_digest(email)).exists()


# Sent once per account, in the transaction that starts its erasure, with `account`.
erasure_starting = Signal()


def accounts_due_for_erasure() -> list[int]:
    now = timezone.now()
    return list(
        Account.objects.filter(
            status__in=[Account.Status.CLOSED, Account.Status.ERASING], erase_after__lte=now
        ).values_list("pk", flat=True)
    )


def _count(record: ErasureRecord, done: dict[str, int]) -> None:
    """Add a batch's numbers to the record, in the batch's transaction (one write)."""
    done = {key: n for key, n in done.items() if n}
    if done:
        counts = dict(record.counts)
        for key, n in done.items():
            counts[key] = counts.get(key, 0) + n
        record.counts = counts
        record.save(update_fields=["counts"])


def erase_account(account_id: int, *, requested_by: str = "schedule") -> ErasureRecord | None:
    """Erase everything the data map marks erasable for one closed account.

    Idempotent: each batch commits on its own, so a killed run leaves a consistent
    state and the next run carries on where it stopped.
    """
    with transaction.atomic():
        account = Account.objects.select_for_update().filter(pk=account_id).first()
        record = ErasureRecord.objects.filter(account_ref=account_id).first()
        if account is None and record is None:
            return None  # no such account, never was
        if account is not None:
            record = _start(account, record, requested_by)
    assert record is not None
    if account is not None:
        emptied: set[type[models.Model]] = set()
        for entry in erasure_order():
            if entry.erase == Erasure.KEEP_FOR_LEGAL_REASON:
                _hold(entry, account, record)
            elif entry.erase == Erasure.ANONYMISE:
                _anonymise(entry, account, record)
            elif entry.erase == Erasure.DELETE:
                _delete(entry, account, record, frozenset(emptied))
                if entry.account_path is not None:
                    emptied.add(entry.model)

    # Archives of all the account's data went with their rows; this also removes a file
    # that a killed archive job left behind.
    delete_archives_of(account_id)

    with transaction.atomic():
        record = ErasureRecord.objects.select_for_update().get(pk=record.pk)
        if record.finished_at is None:
            record.finished_at = timezone.now()
            to = [e for e in record.notice_to.split(",") if e]
            record.notice_to = ""
            record.save(update_fields=["finished_at", "notice_to"])
            audit.record(
                audit.AuditEvent.Action.ERASE,
                by=None,
                target_type="accounts.Account",
                target_id=str(account_id),
                account_id=account_id,
                reason=requested_by,
            )
            if to:
                send_templated("privacy/mail/erased", to, {"record": record}, forget=True)
    return record


def _start(account: Account, record: ErasureRecord | None, requested_by: str) -> ErasureRecord:
    """First run: record the erasure and suppress the addresses before anything goes."""
    if account.status == Account.Status.ACTIVE:
        raise ValueError(f"account {account.pk} is open: it cannot be erased")
    if record is None:
        # Before anything goes: what must outlive the account is taken out of it (its
        # contacts' open requests go to the privacy office).
        erasure_starting.send(sender=Account, account=account)
        emails = list(account.users.values_list("email", flat=True))
        record = ErasureRecord.objects.create(
            account_ref=account.pk,
            closed_at=account.closed_at,
            deadline=account.erase_deadline,
            requested_by=requested_by,
            notice_to=",".join(emails),
        )
        if settings.SUPPRESSION_ENABLED:
            for email in emails:
                SuppressedEmail.objects.get_or_create(
                    digest=email_digest(email), defaults={"reason": "account erased"}
                )
    account.status = Account.Status.ERASING
    account.save(update_fields=["status"])
    return record


def erasure_order() -> list[datamap.Entry]:
    """Legal holds first (before the account they hang on goes), then rows found by a
    lookup through the users, then deeper paths before shallower, the Account last."""

    def key(entry: datamap.Entry) -> tuple[bool, bool, bool, int]:
        depth = len(entry.account_path.split("__")) if entry.account_path else 0
        return (
            entry.model is Account,
            entry.erase != Erasure.KEEP_FOR_LEGAL_REASON,
            entry.rows_for_account is None,
            -depth,
        )

    return sorted(datamap.customer_entries(), key=key)


def _delete(
    entry: datamap.Entry,
    account: Account,
    record: ErasureRecord,
    emptied: frozenset[type[models.Model]] = frozenset(),
) -> None:
    """Delete the entry's rows of the account in committed batches by primary-key range,
    with plain `DELETE` statements (privacy.plain_delete): nothing is loaded but the
    edge of each range, so memory stays flat and a killed run resumes from the rows
    left (each batch commits with its counts).

    Rows reached through a parent the map also lists (a subscription through its
    contact) are taken by ranges of the parent's keys, found by the parent's own index,
    not by walking this table's primary key and joining each row to its parent.
    `emptied` are the tables this run has already emptied: their foreign keys are not
    followed again (the database still checks them at commit; a row written since makes
    the batch fail, and the next run deletes it first)."""
    rows, parent = _driving_rows(entry, account)
    low: Any = None
    while True:
        todo = rows if low is None else rows.filter(pk__gt=low)
        edge = list(todo.order_by("pk").values_list("pk", flat=True)[ERASURE_BATCH - 1 :][:1])
        batch = todo if not edge else todo.filter(pk__lte=edge[0])
        if parent is not None:
            batch = entry.model._default_manager.filter(**{f"{parent}__in": batch.values("pk")})
        with transaction.atomic():
            _no_wait_for_disk()
            done = delete_rows(batch, skip=emptied)
            _count(record, {f"deleted {label}": n for label, n in sorted(done.items())})
        if not edge:
            return
        low = edge[0]


def _no_wait_for_disk() -> None:
    """The batch's commit does not wait for its WAL to reach the disk (PostgreSQL): a
    crash may lose the last batches' commits, never half a batch, and the next run does
    them again. On a busy disk the flush cost more than the batch (up to 0.1 s each)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _driving_rows(
    entry: datamap.Entry, account: Account
) -> tuple[models.QuerySet[Any], str | None]:
    """The rows whose key ranges make the batches: the entry's own, or, for a path
    through a parent with an entry of its own ("contact__account", Contact at
    "account"), the parent's, with the name of the foreign key to it."""
    hop, _, rest = (entry.account_path or "").partition("__")
    if rest:
        target = entry.model._meta.get_field(hop).related_model
        parent = datamap.entry_for(target) if isinstance(target, type) else None
        if parent is not None and parent.account_path == rest:
            return parent.queryset_for(account).order_by(), hop
    return entry.queryset_for(account).order_by(), None


def _anonymise(entry: datamap.Entry, account: Account, record: ErasureRecord) -> None:
    values: dict[str, Any] = dict(entry.anonymise_with)
    # Rows already anonymised no longer match the account path, or match the values.
    while True:
        qs = entry.queryset_for(account).exclude(**values)
        ids = list(qs.values_list("pk", flat=True)[:ERASURE_BATCH])
        if not ids:
            return
        with transaction.atomic():
            n = entry.model._default_manager.filter(pk__in=ids).update(**values)
            _count(record, {f"anonymised {entry.label}": n})


def _hold(entry: datamap.Entry, account: Account, record: ErasureRecord) -> None:
    """Keep rows a law requires, detached from the account, until their end date (per
    row group when the period depends on the row: `keep_years_by`)."""
    assert entry.keep_years is not None
    now = timezone.now()
    if not entry.keep_years_by:
        _hold_rows(
            entry,
            entry.queryset_for(account),
            now + relativedelta(years=entry.keep_years()),
            record,
        )
        return
    groups = entry.queryset_for(account).values_list(*entry.keep_years_by).distinct()
    for values in list(groups.order_by()):
        years = entry.keep_years(*values)
        rows = entry.queryset_for(account).filter(
            **dict(zip(entry.keep_years_by, values, strict=True))
        )
        _hold_rows(entry, rows, now + relativedelta(years=years), record)


def _hold_rows(
    entry: datamap.Entry, rows: Any, keep_until: datetime, record: ErasureRecord
) -> None:
    while True:
        ids = list(rows.values_list("pk", flat=True)[:ERASURE_BATCH])
        if not ids:
            return
        with transaction.atomic():
            n = entry.model._default_manager.filter(pk__in=ids).update(
                **{entry.keep_until_field: keep_until}, **entry.detach_with
            )
            _count(record, {f"kept for a legal reason {entry.label}": n})


def delete_expired_legal_holds() -> dict[str, int]:
    """Delete what was kept for a legal reason once its period is over (P14)."""
    now = timezone.now()
    deleted = {}
    for entry in datamap.entries():
        if entry.erase != Erasure.KEEP_FOR_LEGAL_REASON:
            continue
        qs = entry.model._default_manager.filter(**{f"{entry.keep_until_field}__lte": now})
        n, _ = qs.delete()
        deleted[entry.label] = n
    return deleted


def overdue_erasures() -> list[int]:
    """Accounts past their erasure deadline: should never happen; staff are alerted."""
    return list(
        Account.objects.exclude(status=Account.Status.ACTIVE)
        .filter(erase_deadline__lt=timezone.now())
        .values_list("pk", flat=True)
    )
