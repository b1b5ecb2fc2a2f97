"""The local outbox: where mail goes when no SMTP server is configured."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)
    from_email = models.CharField(max_length=320)
    recipients = models.TextField(help_text=_("comma-separated"))
    subject = models.CharField(max_length=998)
    body = models.TextField()
    raw = models.TextField(help_text=_("the whole message as it would go over SMTP"))

    class Meta:
        ordering = ("-sent_at", "-pk")

    def __str__(self) -> str:
        return self.subject
