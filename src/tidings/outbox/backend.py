"""A Django mail backend that stores each message in the local outbox table."""

from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

from tidings.outbox.models import OutboxMessage


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        rows = [
            OutboxMessage(
                from_email=m.from_email,
                recipients=", ".join(m.recipients()),
                subject=str(m.subject),
                body=str(m.body),
                raw=m.message().as_string(),
            )
            for m in email_messages
        ]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
