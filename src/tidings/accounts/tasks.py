from celery import shared_task

from tidings.accounts.services import lift_due_account_restrictions
from tidings.core import retention


@shared_task
def purge_unconfirmed_signups() -> int:
    """Registrations never confirmed are deleted after TIDINGS_UNCONFIRMED_SIGNUP_DAYS (P12)."""
    return retention.run("unconfirmed registrations")


@shared_task
def lift_due_restrictions() -> int:
    """Hourly: accounts whose announced end of a restriction of processing has come."""
    return lift_due_account_restrictions()
