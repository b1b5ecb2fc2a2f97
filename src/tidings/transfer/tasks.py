"""Celery entry points of imports and exports: load an id, call a service."""

from celery import shared_task

from tidings.transfer import importer, services


@shared_task(acks_late=True)
def analyse_import_task(job_id: int) -> None:
    """Read an uploaded file (format, columns, limits) before its mapping."""
    services.analyse_upload(job_id)


@shared_task(acks_late=True)
def run_import_task(job_id: int) -> None:
    """Run or resume one import from its checkpoint."""
    importer.run_import(job_id)


@shared_task(acks_late=True)
def run_export_task(job_id: int) -> None:
    """Build the file of one export."""
    services.run_export(job_id)


@shared_task
def delete_expired_transfer_files() -> dict[str, int]:
    """Delete exports and import reports past their expiry."""
    return services.delete_expired_files()


@shared_task
def sweep_orphaned_transfer_files() -> list[str]:
    """Delete upload files that no import names, left by killed processes."""
    return services.sweep_orphaned_files()


@shared_task
def resume_stalled_transfers() -> list[str]:
    """Queue again the imports and exports whose worker died."""
    return services.resume_stalled()
