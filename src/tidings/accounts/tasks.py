from celery import shared_task

from tidings.privacy import retention


@shared_task
def purge_unconfirmed_signups() -> int:
    """Registrations never confirmed are deleted after TIDINGS_UNCONFIRMED_SIGNUP_DAYS (P12)."""
    return retention.run("unconfirmed registrations")
