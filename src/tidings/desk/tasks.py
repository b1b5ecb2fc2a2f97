from celery import shared_task

from tidings.desk import followups, imap


@shared_task
def send_due_followups() -> int:
    return followups.send_due()


@shared_task
def poll_support_mailbox() -> dict[str, int]:
    """Every minute: new mail in the support address's IMAP mailbox (TIDINGS_DESK_IMAP_*)."""
    return imap.poll().__dict__
