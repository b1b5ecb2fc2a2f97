from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from tidings.accounts.models import Account


@shared_task
def purge_unconfirmed_signups() -> int:
    """Registrations never confirmed are deleted after TIDINGS_UNCONFIRMED_SIGNUP_DAYS (P12)."""
    cutoff = timezone.now() - timedelta(days=settings.RETENTION["unconfirmed_signup_days"])
    stale = Account.objects.filter(created_at__lt=cutoff).exclude(
        users__email_confirmed_at__isnull=False
    )
    deleted, _ = stale.delete()
    return deleted
