"""Every import and export starts and ends here; views (and later the API) call these.

An import goes: `receive_upload` (streamed to disk under a size limit) → `analyse_upload`
in the worker (format, columns, limits of what a workbook may unpack to) →
`set_mapping` (columns to fields, lists, add or update) → `start_import` (the legal basis;
queues the job). An export is one call: `start_export`. Both are run by Celery tasks and
can be resumed by `resume_stalled` when a worker died.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account, User
from tidings.audience import attribute_types, segments
from tidings.audience.models import Contact, MailingList, Segment, Subscription
from tidings.audience.services import AudienceError, declare_attributes
from tidings.core import jobs
from tidings.core.leases import Lease, remove_partial_files
from tidings.core.uploads import too_large_message
from tidings.staff import audit
from tidings.transfer import mapping
from tidings.transfer.errors import FileRejected, TransferError, UploadTooLarge
from tidings.transfer.exporter import export_contacts
from tidings.transfer.models import ExportJob, ImportJob, ImportMapping, transfer_path
from tidings.transfer.readers import analyse, count_records, sniff_format

# The jobs of imports and exports, queued by name after the commit (core.jobs).
RUN_IMPORT = "tidings.transfer.tasks.run_import_task"
RUN_EXPORT = "tidings.transfer.tasks.run_export_task"
ANALYSE_IMPORT = "tidings.transfer.tasks.analyse_import_task"


class UploadWriter:
    """Writes an upload to disk as it arrives, refusing it the moment it passes the
    limit: then the partial file is deleted and nothing is stored."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = settings.TRANSFER_UPLOAD_MAX_BYTES if limit is None else limit
        self.relative = f"imports/{uuid.uuid4().hex}.upload"
        self.path = transfer_path(self.relative)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[bytes] | None = open(self.path, "xb")  # noqa: SIM115
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self.handle is not None
        self.size += len(data)
        if self.size > self.limit:
            self.abort()
            raise UploadTooLarge(too_large_message(self.limit))
        self.handle.write(data)

    def finish(self) -> tuple[str, int]:
        assert self.handle is not None
        self.handle.close()
        self.handle = None
        return self.relative, self.size

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        self.path.unlink(missing_ok=True)


def receive_upload(
    account: Account, *, by: User | None, name: str, chunks: Iterable[bytes]
) -> ImportJob:
    """Stream an upload to disk (UploadTooLarge past the limit) and queue its analysis."""
    writer = UploadWriter()
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    relative, size = writer.finish()
    return create_import(account, by=by, original_name=name, upload_file=relative, size=size)


def create_import(
    account: Account, *, by: User | None, original_name: str, upload_file: str, size: int
) -> ImportJob:
    """A new import of a stored upload, its analysis queued for a worker: reading a file
    (a workbook may unpack to a hundred times its size) never holds a web request."""
    with transaction.atomic():
        job = ImportJob.objects.create(
            account=account,
            created_by=by,
            status=ImportJob.Status.ANALYSING,
            original_name=(original_name or "upload")[:255],
            upload_file=upload_file,
            size=size,
            format=sniff_format(transfer_path(upload_file)),
            expires_at=timezone.now() + timedelta(days=settings.TRANSFER_FILE_DAYS),
        )
        jobs.enqueue(ANALYSE_IMPORT, job.pk)
    # Where the job ran at once (eager tasks, outside a transaction), show its result.
    job.refresh_from_db()
    return job


def analyse_upload(job_id: int) -> ImportJob | None:
    """Read an upload whole in the worker, streamed and within the workbook limits: its
    format, header, columns, a preview and the suggested mapping, or a failed import
    whose error says why (the file is deleted, nothing else changes)."""
    job = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.ANALYSING).first()
    if job is None:
        return None
    path = transfer_path(job.upload_file)
    try:
        info = analyse(path)
        # The whole file once, now: a limit passed or a broken line further down is
        # reported before the customer maps anything, and the import need not count.
        total = count_records(path, info)
    except FileRejected as error:
        now = timezone.now()
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.ANALYSING).update(
            status=ImportJob.Status.FAILED,
            error=f"{job.original_name}: {error} Nothing was imported.",
            upload_file="",
            finished_at=now,
        )
        path.unlink(missing_ok=True)
        job.refresh_from_db()
        return job
    remembered = ImportMapping.objects.filter(account_id=job.account_id).first()
    targets = mapping.suggest(info.columns, remembered.targets if remembered else None)
    if mapping.EMAIL not in targets:
        # No header names it: the first column whose values look like addresses.
        for i in range(len(info.columns)):
            if any("@" in row[i] for row in info.preview if i < len(row)):
                targets[i] = mapping.EMAIL
                break
    ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.ANALYSING).update(
        status=ImportJob.Status.UPLOADED,
        format=info.format,
        encoding=info.encoding,
        delimiter=info.delimiter,
        has_header=info.has_header,
        columns=info.columns,
        preview=info.preview,
        mapping=targets,
        types=mapping.guess_types(info.columns, info.preview),
        rows_total=total,
    )
    job.refresh_from_db()
    return job


def preview(job: ImportJob) -> list[list[str]]:
    """The first rows of the upload, for the mapping page (found by the analysis)."""
    return [[str(cell) for cell in row] for row in job.preview]


def set_mapping(
    job: ImportJob,
    *,
    targets: list[str],
    mode: str,
    list_ids: Iterable[int],
    types: list[str] | None = None,
) -> ImportJob:
    """Store the column mapping, the types of the attribute columns (the guessed ones
    when not given), the mode and the lists, and remember the mapping for the account's
    next import."""
    _check_editable(job)
    if mode not in ImportJob.Mode.values:
        raise TransferError(_("Choose whether existing contacts are updated."))
    wanted = {int(i) for i in list_ids}
    lists = set(
        MailingList.objects.filter(account_id=job.account_id, pk__in=wanted).values_list(
            "pk", flat=True
        )
    )
    if lists != wanted:
        raise TransferError(_("One of the chosen lists does not exist."))
    job.mapping = mapping.validate(job.columns, targets)
    chosen = list(types) if types is not None else list(job.types)
    chosen += [""] * (len(job.columns) - len(chosen))
    for kind in chosen:
        if kind and kind not in attribute_types.KINDS:
            raise TransferError(_("Choose text, number, date or yes/no as a column's type."))
    mapping.attribute_kinds(job.account_id, job.columns, job.mapping, chosen, existing=True)
    job.types = chosen[: len(job.columns)]
    job.mode = mode
    job.list_ids = sorted(lists)
    job.status = ImportJob.Status.MAPPED
    with transaction.atomic():
        job.save(update_fields=["mapping", "types", "mode", "list_ids", "status"])
        ImportMapping.objects.update_or_create(
            account_id=job.account_id,
            defaults={"targets": mapping.to_remember(job.columns, job.mapping)},
        )
    return job


def start_import(
    job: ImportJob,
    *,
    by: User | None,
    legal_basis: str,
    basis_date: date | None,
    statement: str,
) -> ImportJob:
    """Record the legal basis the customer states for the whole file and queue the job.

    Consent needs the date it was collected; a contract may give one."""
    if job.status != ImportJob.Status.MAPPED:
        raise TransferError(_("Map the columns first."))
    if job.account.is_restricted:
        raise TransferError(_("Processing is restricted for this account: nothing is imported."))
    if legal_basis not in ImportJob.Basis.values:
        raise TransferError(_("Choose the legal basis on which you may mail these people."))
    statement = " ".join((statement or "").split())
    if not statement:
        raise TransferError(_("Say how and where these people gave their consent or contract."))
    if legal_basis == ImportJob.Basis.CONSENT and basis_date is None:
        raise TransferError(_("Give the date on which the consent was collected."))
    if basis_date is not None and basis_date > timezone.localdate():
        raise TransferError(_("The date of the consent cannot be in the future."))
    job.legal_basis = legal_basis
    job.basis_at = (
        timezone.make_aware(datetime.combine(basis_date, time(12))) if basis_date else None
    )
    job.statement = statement[:400]
    job.status = ImportJob.Status.QUEUED
    job.preview = []  # personal data the finished import's row need not keep
    kinds = mapping.attribute_kinds(job.account_id, job.columns, job.mapping, job.types)
    with transaction.atomic():
        # The attribute columns' types become the account's: the import stores their
        # values in that typed form, and segments compare them by it.
        # (The values contacts already hold are converted by the job, in the worker.)
        declare_attributes(job.account_id, kinds, convert=False)
        job.save(update_fields=["legal_basis", "basis_at", "statement", "status", "preview"])
        audit.record(
            audit.AuditEvent.Action.CREATE,
            job,
            by=by,
            fields=["contacts"],
            account_id=job.account_id,
            reason=f"import of contacts (legal basis: {legal_basis})",
        )
        jobs.enqueue(RUN_IMPORT, job.pk)
    return job


def discard_import(job: ImportJob) -> None:
    """Drop an import that was not started, and its upload."""
    if job.status != ImportJob.Status.ANALYSING:
        _check_editable(job)
    job.delete()  # the files go with the row (signals.py)


def _check_editable(job: ImportJob) -> None:
    if job.status == ImportJob.Status.ANALYSING:
        raise TransferError(_("The file is still being analysed: try again in a moment."))
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.MAPPED):
        raise TransferError(_("This import has started; it can no longer be changed."))


# Exports -----------------------------------------------------------------------------


def start_export(
    account: Account,
    *,
    by: User | None,
    fmt: str,
    scope: str = ExportJob.Scope.ALL,
    list_id: int | None = None,
    q: str = "",
    status: str = "",
    segment_id: int | None = None,
) -> ExportJob:
    """Queue the export of the whole audience, one list, a search or a segment, as
    CSV/XLSX/XLS."""
    if not account.is_processing_allowed:
        raise TransferError(_("The account is closed: nothing more is processed."))
    if fmt not in ExportJob.Format.values:
        raise TransferError(_("Choose CSV, XLSX or XLS."))
    criteria: dict[str, Any] = {}
    if scope == ExportJob.Scope.LIST:
        mailing_list = (
            MailingList.objects.filter(account=account, pk=list_id).first() if list_id else None
        )
        if mailing_list is None:
            raise TransferError(_("Choose one of your lists."))
        criteria = {"list": mailing_list.pk}
        description = f"list “{mailing_list.name}”"
    elif scope == ExportJob.Scope.SEARCH:
        if status and status not in Contact.Status.values:
            raise TransferError(_("Unknown status."))
        criteria = {"q": q.strip()[:200], "status": status}
        parts = [f"containing “{criteria['q']}”"] if criteria["q"] else []
        parts += [f"status {status}"] if status else []
        description = "contacts " + (" and ".join(parts) or "(no filter)")
    elif scope == ExportJob.Scope.SEGMENT:
        segment = (
            Segment.objects.filter(account=account, pk=segment_id).first() if segment_id else None
        )
        if segment is None:
            raise TransferError(_("Choose one of your segments."))
        criteria = {"segment": segment.pk}
        description = _("segment “%(name)s”") % {"name": segment.name}
    elif scope == ExportJob.Scope.ALL:
        description = "the whole audience"
    else:
        raise TransferError(_("Choose what to export."))
    with transaction.atomic():
        job = ExportJob.objects.create(
            account=account,
            created_by=by,
            format=fmt,
            scope=scope,
            criteria=criteria,
            description=description[:300],
        )
        audit.record(
            audit.AuditEvent.Action.EXPORT,
            job,
            by=by,
            fields=["contacts"],
            account_id=account.pk,
            reason=f"export of contacts ({scope}) as {fmt}",
        )
        jobs.enqueue(RUN_EXPORT, job.pk)
    return job


def export_queryset(job: ExportJob) -> QuerySet[Contact]:
    """The contacts an export covers: always within the job's account."""
    contacts = Contact.objects.filter(account_id=job.account_id)
    if job.scope == ExportJob.Scope.LIST:
        contacts = contacts.filter(
            subscriptions__mailing_list_id=job.criteria["list"],
            subscriptions__status__in=[
                Subscription.Status.CONFIRMED,
                Subscription.Status.UNCONFIRMED,
            ],
        )
    elif job.scope == ExportJob.Scope.SEARCH:
        q = job.criteria.get("q", "")
        if q:
            contacts = contacts.filter(Q(email__icontains=q) | Q(name__icontains=q))
        if job.criteria.get("status"):
            contacts = contacts.filter(status=job.criteria["status"])
    elif job.scope == ExportJob.Scope.SEGMENT:
        # The segment's contacts as they are when the file is built (as its campaigns
        # see them): restricted contacts are in no segment (P18).
        segment = Segment.objects.filter(account_id=job.account_id, pk=job.criteria["segment"])
        found = segment.first()
        if found is None:
            raise TransferError(_("The segment was deleted: nothing was exported."))
        contacts = segments.contacts_in(found)
    return contacts


def run_export(job_id: int) -> ExportJob | None:
    """Build the file of one export; safe to run again (it starts the file afresh)."""
    now = timezone.now()
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
            return None
        if job.lease_until is not None and job.lease_until > now:
            return None
        if not job.account.is_processing_allowed:
            job.status = ExportJob.Status.FAILED
            job.error = "The account was closed: the export was not built."
            job.save(update_fields=["status", "error"])
            return None
        lease = Lease(ExportJob, job.pk)
        job.status = ExportJob.Status.RUNNING
        job.lease_until = lease.until
        job.save(update_fields=["status", "lease_until"])
    relative = f"exports/{job.pk}-{uuid.uuid4().hex}.{job.format}"
    path = transfer_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed mid-way left its half-written file behind.
    remove_partial_files(path.parent, f"{job.pk}-")
    partial = path.with_suffix(".part")
    try:
        contacts = export_queryset(job)
    except (TransferError, AudienceError) as error:
        # A segment deleted, or whose rules name a list deleted, since it was asked for.
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(error), lease_until=None
        )
        job.refresh_from_db()
        return job
    try:
        rows = export_contacts(contacts, job.format, partial, heartbeat=lease.beat)
        partial.rename(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        # Given back only if still ours: a job whose lease was taken over (LeaseLost)
        # must not clear the lease of the worker that now holds it.
        ExportJob.objects.filter(pk=job.pk, lease_until=lease.until).update(lease_until=None)
        raise
    finished = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE,
        file=relative,
        size=path.stat().st_size,
        rows=rows,
        finished_at=finished,
        expires_at=finished + timedelta(days=settings.TRANSFER_FILE_DAYS),
        lease_until=None,
    )
    job.refresh_from_db()
    return job


def export_file(job: ExportJob, *, by: User | None) -> Path:
    """The file of a finished export, for its download (recorded in the audit log)."""
    if job.status != ExportJob.Status.DONE or not job.file:
        raise TransferError(_("This export is not ready."))
    path = transfer_path(job.file)
    if not path.exists():
        raise TransferError(_("This export has expired."))
    audit.record(
        audit.AuditEvent.Action.EXPORT,
        job,
        by=by,
        fields=["file"],
        account_id=job.account_id,
        reason="export downloaded",
    )
    return path


# Housekeeping ------------------------------------------------------------------------


def delete_expired_files() -> dict[str, int]:
    """Delete exports past their expiry, and the reports and unused uploads of imports
    past theirs; the import's row (its counts, its stated basis) stays."""
    now = timezone.now()
    exports = 0
    for export in ExportJob.objects.filter(expires_at__lte=now):
        export.delete()  # with its file (signals.py)
        exports += 1
    imports = 0
    expired = ImportJob.objects.filter(expires_at__lte=now).exclude(
        status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    )
    for job in expired:
        if job.status in (
            ImportJob.Status.ANALYSING,
            ImportJob.Status.UPLOADED,
            ImportJob.Status.MAPPED,
        ):
            job.delete()  # never started: nothing to keep
        else:
            for relative in (job.report_file, job.upload_file):
                if relative:
                    transfer_path(relative).unlink(missing_ok=True)
            ImportJob.objects.filter(pk=job.pk).update(
                report_file="", upload_file="", expires_at=None
            )
        imports += 1
    return {"exports": exports, "imports": imports}


def sweep_orphaned_files(now: datetime | None = None) -> list[str]:
    """Delete the files under the imports folder that no import names once they are
    TRANSFER_ORPHAN_HOURS old: uploads whose request or analysis was killed before an
    import owned them (a refused or failed request deletes its own at once)."""
    folder = transfer_path("imports")
    if not folder.is_dir():
        return []
    cutoff = (now or timezone.now()) - timedelta(hours=settings.TRANSFER_ORPHAN_HOURS)
    swept = []
    for path in folder.iterdir():
        try:
            old = path.is_file() and path.stat().st_mtime < cutoff.timestamp()
        except FileNotFoundError:
            continue  # deleted meanwhile by its own import
        if not old:
            continue  # may belong to a request still streaming, or a row not yet committed
        relative = f"imports/{path.name}"
        if ImportJob.objects.filter(Q(upload_file=relative) | Q(report_file=relative)).exists():
            continue
        path.unlink(missing_ok=True)
        swept.append(relative)
    return swept


def resume_stalled() -> list[str]:
    """Queue again the imports and exports whose worker died (lease run out)."""
    now = timezone.now()
    stale = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    queued_before = now - timedelta(minutes=5)
    resumed = []
    for pk in ImportJob.objects.filter(
        stale,
        Q(status=ImportJob.Status.RUNNING)
        | Q(status=ImportJob.Status.QUEUED, created_at__lt=queued_before),
    ).values_list("pk", flat=True):
        jobs.send_now(RUN_IMPORT, pk)
        resumed.append(f"import {pk}")
    # An analysis has no lease: one queued this long ago is taken as lost with its worker
    # (a second run of a slow one only repeats the reading).
    for pk in ImportJob.objects.filter(
        status=ImportJob.Status.ANALYSING, created_at__lt=now - timedelta(minutes=30)
    ).values_list("pk", flat=True):
        jobs.send_now(ANALYSE_IMPORT, pk)
        resumed.append(f"analysis {pk}")
    for pk in ExportJob.objects.filter(
        stale,
        Q(status=ExportJob.Status.RUNNING)
        | Q(status=ExportJob.Status.QUEUED, created_at__lt=queued_before),
    ).values_list("pk", flat=True):
        jobs.send_now(RUN_EXPORT, pk)
        resumed.append(f"export {pk}")
    return resumed
