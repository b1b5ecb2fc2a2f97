"""Django's own mail (the password reset, anything a library sends through
`django.core.mail`) into the one pipeline: EMAIL_BACKEND points here, so even that mail
is recorded, sent at most once through the operator's relay, DKIM-signed and rate
limited like everything else. Each recipient gets a message of their own."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parseaddr

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage, EmailMultiAlternatives

from tidings.accounts.models import User
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.sending.postman import InvalidRecipient

log = logging.getLogger(__name__)


class PipelineBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        posted = 0
        for message in email_messages:
            if message.attachments:
                raise ValueError("Tidings's pipeline sends no attachments")
            html = ""
            if isinstance(message, EmailMultiAlternatives):
                html = next((str(c) for c, kind in message.alternatives if kind == "text/html"), "")
            name, address = parseaddr(message.from_email)
            reply_to = message.reply_to[0] if message.reply_to else ""
            for recipient in message.recipients():
                user = User.objects.filter(email__iexact=recipient).values_list("pk", flat=True)
                try:
                    post(
                        OutboundMessage(
                            to=recipient,
                            subject=str(message.subject),
                            text=str(message.body),
                            html=html,
                            from_email=address,
                            from_name=name,
                            reply_to=reply_to,
                            purpose=Purpose.NOTICE,
                            kind=Kind.DJANGO,
                            user_id=user.first(),
                        )
                    )
                except InvalidRecipient as error:
                    if not self.fail_silently:
                        raise
                    log.warning("not sent: %s", error)
                    continue
                posted += 1
        return posted
