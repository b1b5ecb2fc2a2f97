"""Data map entries and retention rules for imports and exports: the jobs and the files
they hold."""

import contextlib
import csv
import os
import re
import tempfile
from datetime import datetime
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.core import retention
from tidings.core.datamap import (
    ContactErasure,
    ContactPart,
    Contacts,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)
from tidings.core.spreadsheets import csv_writer
from tidings.transfer.models import ExportJob, ImportJob, ImportMapping, transfer_path

PENDING = (ImportJob.Status.ANALYSING, ImportJob.Status.UPLOADED, ImportJob.Status.MAPPED)
# Something shaped like an address inside a cell ("Name <a@b.example>", "'=a@b").
ADDRESS = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")


def _forms(token: str) -> set[str]:
    """An address as written in a file, in the forms the audience stores: lower case,
    the domain also in IDNA."""
    local, _, domain = token.strip().lower().rpartition("@")
    found = {f"{local}@{domain}"}
    with contextlib.suppress(UnicodeError):
        found.add(f"{local}@{domain.encode('idna').decode('ascii')}")
    return found


def _names_one_of(cells: list[str], emails: set[str]) -> bool:
    return any(
        not _forms(token).isdisjoint(emails) for cell in cells for token in ADDRESS.findall(cell)
    )


def _imports_holding(contacts: Contacts) -> QuerySet[ImportJob]:
    """The account's imports whose files may name these contacts: uploads not imported
    yet, and the reports of rejected rows (which repeat those rows)."""
    return ImportJob.objects.filter(account_id=contacts.account_id).filter(
        Q(status__in=PENDING) | ~Q(report_file="")
    )


def _rewrite_report(relative: str, emails: set[str]) -> None:
    """The report without the rows that name one of `emails` (its header stays)."""
    path = transfer_path(relative)
    if not path.exists():
        return
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".erasing-", suffix=".csv")
    dropped = 0
    with (
        os.fdopen(handle, "w", encoding="utf-8", newline="") as out,
        path.open(encoding="utf-8", newline="") as source,
    ):
        writer = csv_writer(out)
        for number, row in enumerate(csv.reader(source)):
            if number and _names_one_of(row, emails):
                dropped += 1
                continue
            writer.writerow(row)
    if dropped:
        Path(name).replace(path)
    else:
        Path(name).unlink()


def _forget_in_imports(rows: QuerySet[ImportJob], contacts: Contacts) -> None:
    """Erased contacts leave the import files: an upload not yet imported is withdrawn
    (the customer uploads again; reading an XLSX to cut one row out is not worth the
    risk), and each rejected-rows report loses the rows that name them. A running
    import's files are its own until it ends (it refuses the erased addresses: they are
    suppressed)."""
    emails = {e.lower() for e in contacts.emails}
    for job in rows.filter(status__in=PENDING):
        job.delete()  # deleting the row deletes its files (signals.py)
    for relative in (
        rows.exclude(status=ImportJob.Status.RUNNING)
        .exclude(status__in=PENDING)
        .values_list("report_file", flat=True)
    ):
        # Once the erasure commits: a rolled-back erasure leaves the report as it was.
        transaction.on_commit(partial(_rewrite_report, relative, emails))


def _exports_holding(contacts: Contacts) -> QuerySet[ExportJob]:
    """The account's contact exports made since the first of these contacts was added."""
    if contacts.since is None:
        return ExportJob.objects.none()
    return ExportJob.objects.filter(account_id=contacts.account_id, created_at__gte=contacts.since)


register(
    ImportJob,
    owner=Owner.CUSTOMER,
    category=_("imports of the customer's contacts (application data)"),
    purpose=_("adding the customer's contacts from a file, with the legal basis they stated"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_(
        "the uploaded file until the import ends; the report of rejected rows (which "
        "repeats those rows) for the export period, 7 days by default; the job's counts "
        "and stated legal basis until the account is erased"
    ),
    personal_fields=["original_name", "upload_file", "preview", "report_file", "statement"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    in_archive=False,
    description=_("Deleting the row deletes its files (the upload and the rejected-rows report)."),
    contact=ContactPart(
        title=_("Import files that named you"),
        rows=_imports_holding,
        shown=False,  # the customer's working files; what they added is shown elsewhere
        fold=_forget_in_imports,
        erase=ContactErasure.KEEP,  # the job's counts stay; its files lose the contact
    ),
)
register(
    ExportJob,
    owner=Owner.CUSTOMER,
    category=_("exports of the customer's contacts (application data)"),
    purpose=_("giving the customer their contacts as a file (P20)"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("the file and its row are deleted when the export expires, 7 days by default"),
    personal_fields=["file", "criteria"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    in_archive=False,
    description=_("Deleting the row deletes its file."),
    contact=ContactPart(
        title=_("Exports of contacts that may hold you"),
        rows=_exports_holding,
        shown=False,  # the customer's working files, gone within days
        erase=ContactErasure.DELETE,  # the customer exports again if they need to
    ),
)
declare_free_of_personal_data(ImportMapping, "column headers and the fields they map to")


def _why() -> str:
    return f"exports and uploads never imported are kept {settings.TRANSFER_FILE_DAYS} days"


def _expired_exports(now: datetime) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(expires_at__lte=now)


def _abandoned_uploads(now: datetime) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(status__in=PENDING, expires_at__lte=now)


# Deleting the rows deletes their files (signals.py). The hourly task
# delete_expired_transfer_files does the same, and also removes the rejected-rows reports
# of finished imports, whose rows stay.
retention.register("contact exports", why=_why, expired=_expired_exports)
retention.register("contact uploads never imported", why=_why, expired=_abandoned_uploads)
