from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower, Trim
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.core import retention
from tidings.core.datamap import (
    ContactErasure,
    ContactPart,
    Contacts,
    Erasure,
    LegalBasis,
    Owner,
    register,
)
from tidings.outbox.models import OutboxMessage


def _messages_to(account: Account) -> QuerySet[OutboxMessage]:
    """The local copies of mail to the account's users and to its contacts (its
    campaigns, confirmations, answers to their requests): erasing the account erases
    them with it, as erasing one contact erases that contact's."""
    query = Q(pk__in=[])
    for email in account.users.values_list("email", flat=True):
        query |= Q(recipients__icontains=email)
    contacts = account.contacts.all().annotate(address=Lower(Trim("email"))).values("address")
    return OutboxMessage.objects.annotate(to=Lower(Trim("recipients"))).filter(
        query | Q(to__in=contacts)
    )


def _messages_to_contacts(contacts: Contacts) -> QuerySet[OutboxMessage]:
    """The local copies of mail to these contacts (one recipient a message: the
    postman hands each message over for one address)."""
    return OutboxMessage.objects.annotate(to=Lower(Trim("recipients"))).filter(
        to__in=[e.lower() for e in contacts.emails]
    )


register(
    OutboxMessage,
    owner=Owner.CUSTOMER,
    data_subjects=(Owner.CUSTOMER, Owner.CONTACT),
    category=_("communications"),
    purpose=_("the operator's copy of mail sent to the customer when no SMTP relay is set"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("TIDINGS_OUTBOX_DAYS (default 30 days)"),
    personal_fields=["recipients", "subject", "body", "raw"],
    # The raw message repeats the body with its headers: shown in the export, not here.
    shown_fields=("sent_at", "recipients", "subject", "body"),
    erase=Erasure.DELETE,
    rows_for_account=_messages_to,
    contact=ContactPart(
        title=_("Local copies of mail sent to you"),
        rows=_messages_to_contacts,
        shown=False,  # the same messages as the ledger's, which the contact's view lists
        erase=ContactErasure.DELETE,
    ),
)


def _old_messages(now: datetime) -> QuerySet[OutboxMessage]:
    cutoff = now - timedelta(days=settings.RETENTION["outbox_days"])
    return OutboxMessage.objects.filter(sent_at__lt=cutoff)


retention.register(
    "local outbox",
    why=lambda: f"mail in the local outbox is kept {settings.RETENTION['outbox_days']} days",
    expired=_old_messages,
)
