from django.db.models import Q, QuerySet

from tidings.accounts.models import Account
from tidings.outbox.models import OutboxMessage
from tidings.privacy.datamap import Erasure, LegalBasis, Owner, register


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
    erase=Erasure.DELETE,
    rows_for_account=_messages_to,
)
