"""A job's files go with its row: deleting an import or export (by the customer, the
expiry job or the erasure of the account) deletes its files once the deletion commits."""

from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from tidings.transfer.models import ExportJob, ImportJob, transfer_path


def _unlink_on_commit(*relatives: str) -> None:
    paths = [transfer_path(r) for r in relatives if r]
    if paths:
        transaction.on_commit(lambda: _unlink(paths))


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@receiver(post_delete, sender=ImportJob)
def _import_deleted(sender: Any, instance: ImportJob, **kwargs: Any) -> None:
    _unlink_on_commit(instance.upload_file, instance.report_file)


@receiver(post_delete, sender=ExportJob)
def _export_deleted(sender: Any, instance: ExportJob, **kwargs: Any) -> None:
    _unlink_on_commit(instance.file)
