"""Data map entries and retention rules for imports and exports: the jobs and the files
they hold."""

from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from tidings.core import retention
from tidings.core.datamap import (
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)
from tidings.transfer.models import ExportJob, ImportJob, ImportMapping

register(
    ImportJob,
    owner=Owner.CUSTOMER,
    category="imports of the customer's contacts (application data)",
    purpose="adding the customer's contacts from a file, with the legal basis they stated",
    legal_basis=LegalBasis.CONTRACT,
    retention=(
        "the uploaded file until the import ends; the report of rejected rows (which "
        "repeats those rows) for the export period, 7 days by default; the job's counts "
        "and stated legal basis until the account is erased"
    ),
    personal_fields=["original_name", "upload_file", "report_file", "statement"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    in_archive=False,
    description="Deleting the row deletes its files (the upload and the rejected-rows report).",
)
register(
    ExportJob,
    owner=Owner.CUSTOMER,
    category="exports of the customer's contacts (application data)",
    purpose="giving the customer their contacts as a file (P20)",
    legal_basis=LegalBasis.CONTRACT,
    retention="the file and its row are deleted when the export expires, 7 days by default",
    personal_fields=["file", "criteria"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    in_archive=False,
    description="Deleting the row deletes its file.",
)
declare_free_of_personal_data(ImportMapping, "column headers and the fields they map to")


def _why() -> str:
    return f"exports and uploads never imported are kept {settings.TRANSFER_FILE_DAYS} days"


def _expired_exports(now: datetime) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(expires_at__lte=now)


def _abandoned_uploads(now: datetime) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(
        status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.MAPPED], expires_at__lte=now
    )


# Deleting the rows deletes their files (signals.py). The hourly task
# delete_expired_transfer_files does the same, and also removes the rejected-rows reports
# of finished imports, whose rows stay.
retention.register("contact exports", why=_why, expired=_expired_exports)
retention.register("contact uploads never imported", why=_why, expired=_abandoned_uploads)
