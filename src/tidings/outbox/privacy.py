from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from tidings.accounts.models import Account
from tidings.core import retention
from tidings.core.datamap import Erasure, LegalBasis, Owner, register
from tidings.outbox.models import OutboxMessage


def _messages_to(account: Account) -> QuerySet[OutboxMessage]:
    query = Q(pk__in=[])
    for email in account.users.values_list("email", flat=True):
        query |= Q(recipients__icontains=email)
    return OutboxMessage.objects.filter(query)


register(
    OutboxMessage,
    owner=Owner.CUSTOMER,
    category="communications",
    purpose="the operator's copy of mail sent to the customer when no SMTP relay is set",
    legal_basis=LegalBasis.CONTRACT,
    retention="TIDINGS_OUTBOX_DAYS (default 30 days)",
    personal_fields=["recipients", "subject", "body", "raw"],
    # The raw message repeats the body with its headers: shown in the export, not here.
    shown_fields=("sent_at", "recipients", "subject", "body"),
    erase=Erasure.DELETE,
    rows_for_account=_messages_to,
)


def _old_messages(now: datetime) -> QuerySet[OutboxMessage]:
    cutoff = now - timedelta(days=settings.RETENTION["outbox_days"])
    return OutboxMessage.objects.filter(sent_at__lt=cutoff)


retention.register(
    "local outbox",
    why=lambda: f"mail in the local outbox is kept {settings.RETENTION['outbox_days']} days",
    expired=_old_messages,
)
