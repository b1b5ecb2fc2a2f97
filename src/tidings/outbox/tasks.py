from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from tidings.outbox.models import OutboxMessage


@shared_task
def purge_old_messages() -> int:
    """The local outbox keeps mail for TIDINGS_OUTBOX_DAYS (P12)."""
    cutoff = timezone.now() - timedelta(days=settings.RETENTION["outbox_days"])
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
