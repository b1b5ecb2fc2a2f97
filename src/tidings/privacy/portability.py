"""Portability (P20): a customer asks for all their data and downloads one archive.

The request and each download are audited. The archive is built by a Celery job, the
requester is mailed a link that needs a login to the same account, and the archive is
deleted when it expires (the retention rule "archives of all my data") or when the
account is erased (its row is in the data map; deleting a row deletes its file).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.core import baseurl, jobs
from tidings.core.leases import Lease, remove_partial_files
from tidings.core.mail import send_templated
from tidings.privacy.archive import write_archive
from tidings.privacy.models import AccountExport
from tidings.staff import audit

# The job that builds an archive, queued by name after the commit (core.jobs).
BUILD_ARCHIVE = "tidings.privacy.tasks.build_account_export_task"


class ExportRefused(Exception):
    """A request for the archive that cannot be served; the message says why."""


class ArchiveExpired(ExportRefused):
    """The archive's link has expired (the archive is, or is about to be, deleted)."""


def archive_path(relative: str) -> Path:
    return Path(settings.ACCOUNT_EXPORT_DIR) / relative


def account_archive_dir(account_id: int) -> Path:
    """Where the archives of one account live (removed whole by the erasure)."""
    return Path(settings.ACCOUNT_EXPORT_DIR) / str(account_id)


def request_account_export(account: Account, *, by: User, fmt: str) -> AccountExport:
    """Queue the archive of all the account's data as CSV, XLSX or XLS files."""
    if not account.is_processing_allowed:
        raise ExportRefused(_("The account is closed: nothing more is processed."))
    if fmt not in AccountExport.Format.values:
        raise ExportRefused(_("Choose CSV, XLSX or XLS."))
    if by.account_id != account.pk:
        raise ExportRefused(_("Only the account's own users can ask for its data."))
    busy = AccountExport.objects.filter(
        account=account, status__in=[AccountExport.Status.QUEUED, AccountExport.Status.RUNNING]
    )
    if busy.exists():
        raise ExportRefused(
            _("Your archive is already being built: we email you when it is ready.")
        )
    with transaction.atomic():
        export = AccountExport.objects.create(account=account, requested_by=by, format=fmt)
        audit.record(
            audit.AuditEvent.Action.EXPORT,
            export,
            by=by,
            fields=["all data"],
            account_id=account.pk,
            reason=f"all my data requested as {fmt}",
        )
        jobs.enqueue(BUILD_ARCHIVE, export.pk)
    return export


def build_account_export(export_id: int) -> AccountExport | None:
    """Build one archive and mail its link; safe to run again (it starts afresh)."""
    now = timezone.now()
    with transaction.atomic():
        export = (
            AccountExport.objects.select_for_update(of=("self",))
            .select_related("account", "requested_by")
            .filter(pk=export_id)
            .first()
        )
        if export is None or export.status not in (
            AccountExport.Status.QUEUED,
            AccountExport.Status.RUNNING,
        ):
            return None
        if export.lease_until is not None and export.lease_until > now:
            return None  # another worker is on it
        if not export.account.is_processing_allowed:
            export.status = AccountExport.Status.FAILED
            export.error = "The account was closed: the archive was not built."
            export.save(update_fields=["status", "error"])
            return None
        lease = Lease(AccountExport, export.pk)
        export.status = AccountExport.Status.RUNNING
        export.lease_until = lease.until
        export.save(update_fields=["status", "lease_until"])
    relative = f"{export.account_id}/{export.pk}-{uuid.uuid4().hex}.zip"
    path = archive_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed mid-way left its half-written archive (personal data) behind.
    remove_partial_files(path.parent, f"{export.pk}-")
    partial = path.with_suffix(".part")
    try:
        counts = write_archive(export.account, export.format, partial, heartbeat=lease.beat)
        partial.rename(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        # Given back only if still ours: a job whose lease was taken over (LeaseLost)
        # must not clear the lease of the worker that now holds it.
        AccountExport.objects.filter(pk=export.pk, lease_until=lease.until).update(lease_until=None)
        raise
    finished = timezone.now()
    with transaction.atomic():
        AccountExport.objects.filter(pk=export.pk).update(
            status=AccountExport.Status.DONE,
            file=relative,
            size=path.stat().st_size,
            counts=counts,
            finished_at=finished,
            expires_at=finished + timedelta(days=settings.ACCOUNT_EXPORT_DAYS),
            lease_until=None,
        )
        export.refresh_from_db()
        to = _recipients(export)
        if to:
            link = baseurl.absolute(reverse("accounts:download_export", args=[export.pk]))
            send_templated("privacy/mail/archive_ready", to, {"export": export, "link": link})
    return export


def resume_stalled_archives() -> list[int]:
    """Queue again the archives whose worker died (lease run out) or whose job the
    broker lost (queued for more than five minutes): without it the customer would wait
    forever, and could not ask again while one is "being built"."""
    now = timezone.now()
    stalled = AccountExport.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        Q(status=AccountExport.Status.RUNNING)
        | Q(status=AccountExport.Status.QUEUED, created_at__lt=now - timedelta(minutes=5)),
    ).values_list("pk", flat=True)
    resumed = list(stalled)
    for pk in resumed:
        jobs.send_now(BUILD_ARCHIVE, pk)
    return resumed


def _recipients(export: AccountExport) -> list[str]:
    user = export.requested_by
    if user is not None and user.account_id == export.account_id:
        return [user.email]
    return list(export.account.users.values_list("email", flat=True))


def archive_for_download(account: Account, export_id: int, *, by: User) -> AccountExport | None:
    """The account's archive `export_id`, if it is one of theirs (None otherwise);
    raises ExportRefused when it is not ready or has expired. The download is audited."""
    export = AccountExport.objects.filter(account=account, pk=export_id).first()
    if export is None:
        return None
    if export.is_expired:
        raise ArchiveExpired("This archive has expired and was deleted: ask for a new one.")
    if export.status != AccountExport.Status.DONE or not export.file:
        raise ExportRefused(_("This archive is not ready yet: we email you when it is."))
    if not archive_path(export.file).exists():
        raise ArchiveExpired("This archive has expired and was deleted: ask for a new one.")
    audit.record(
        audit.AuditEvent.Action.EXPORT,
        export,
        by=by,
        fields=["file"],
        account_id=account.pk,
        reason="all my data downloaded",
    )
    return export


def delete_archives_of(account_id: int) -> None:
    """Remove every file of the account's archives, even one a killed job left behind."""
    shutil.rmtree(account_archive_dir(account_id), ignore_errors=True)


@receiver(post_delete, sender=AccountExport)
def _archive_deleted(sender: Any, instance: AccountExport, **kwargs: Any) -> None:
    # Deleting the row (expiry, erasure) deletes the file, once the deletion commits.
    if instance.file:
        path = archive_path(instance.file)
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
