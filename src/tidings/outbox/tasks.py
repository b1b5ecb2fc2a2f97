from celery import shared_task

from tidings.core import retention


@shared_task
def purge_old_messages() -> int:
    """The local outbox keeps mail for TIDINGS_OUTBOX_DAYS (P12)."""
    return retention.run("local outbox")
