"""Data map entries for what the privacy engine itself keeps."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.core import retention
from tidings.core.datamap import (
    Column,
    ContactErasure,
    ContactPart,
    Contacts,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)
from tidings.privacy.models import (
    AccountExport,
    CollectionRecord,
    DataRequest,
    Disclosure,
    ErasureRecord,
    PolicyVersion,
    SuppressedEmail,
)

NOT_CONTACTS = "the operator's records about its customers: no contact of a customer's"
# A disclosure the customer may be shown: none was withheld, or they have been told.
_TOLD = Q(withheld_until__isnull=True) | Q(customer_told_at__isnull=False)


def _archives_holding(contacts: Contacts) -> QuerySet[AccountExport]:
    """Archives of all the account's data made since the first of these contacts was
    added: they hold the contacts (P20)."""
    if contacts.since is None:
        return AccountExport.objects.none()
    return AccountExport.objects.filter(
        account_id=contacts.account_id, created_at__gte=contacts.since
    )


register(
    CollectionRecord,
    owner=Owner.CUSTOMER,
    category=_("records of collection"),
    purpose=_("proving what was collected, when, why and on which legal basis (P2)"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("as long as the data it describes"),
    personal_fields=["point", "data_collected", "purpose", "legal_basis", "collected_at"],
    erase=Erasure.DELETE,
    account_path="account",
    contact=NOT_CONTACTS,
)
register(
    ErasureRecord,
    owner=Owner.CUSTOMER,
    category=_("erasure proof"),
    purpose=_("proving an erasure was done; the last address only until the notice is sent"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("kept; holds counts and dates, the address is blanked once notified"),
    personal_fields=["notice_to"],
    erase=Erasure.KEEP_WITHOUT_PERSONAL_DATA,
    rows_for_account=lambda account: ErasureRecord.objects.filter(account_ref=account.pk),
    exported=False,
    in_archive=False,
    contact=NOT_CONTACTS,
)
declare_free_of_personal_data(
    SuppressedEmail, "keyed hashes only: the address cannot be read back from them"
)
declare_free_of_personal_data(PolicyVersion, "the operator's published policy texts")
declare_free_of_personal_data(Group, "staff role names")
declare_free_of_personal_data(Permission, "permission names")
declare_free_of_personal_data(ContentType, "model names")

register(
    Disclosure,
    owner=Owner.CUSTOMER,
    category=_("disclosures to authorities"),
    purpose=_("recording what was disclosed to an authority, to whom and on which legal ground"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("TIDINGS_AUDIT_RETENTION_YEARS after the account is erased"),
    personal_fields=[
        "data_disclosed",
        "authority",
        "legal_ground",
        "reference",
        "disclosed_at",
        "concerns",
    ],
    shown_fields=("disclosed_at", "authority", "legal_ground", "reference", "data_disclosed"),
    erase=Erasure.KEEP_FOR_LEGAL_REASON,
    account_path="account",
    keep_until_field="keep_until",
    keep_years=lambda: settings.RETENTION["audit_years"],
    detach_with={"account": None, "contact": None},
    # Not shown while a legal prohibition on telling applies (privacy.office).
    shown_to_customer=lambda rows: rows.filter(_TOLD),
    contact=ContactPart(
        title=_("Disclosures to authorities"),
        rows=lambda contacts: Disclosure.objects.filter(
            _TOLD, account_id=contacts.account_id, contact_id__in=contacts.ids
        ),
        # The record of the disclosure is kept (a legal obligation); only the link goes.
        erase_rows=lambda contacts: Disclosure.objects.filter(
            account_id=contacts.account_id, contact_id__in=contacts.ids
        ),
        columns=(
            Column(_("when"), "disclosed_at"),
            Column(_("to whom"), "authority"),
            Column(_("legal ground"), "legal_ground"),
            Column(_("what"), "data_disclosed"),
        ),
        order_by=("disclosed_at", "pk"),
        position=85,
        erase=ContactErasure.ANONYMISE,
        anonymise_with={"contact": None},
    ),
    data_subjects=(Owner.CUSTOMER, Owner.CONTACT),
)
register(
    DataRequest,
    owner=Owner.CUSTOMER,
    category=_("requests about personal data"),
    purpose=_("answering people's requests about their data within one month"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("TIDINGS_AUDIT_RETENTION_YEARS after the request is answered"),
    personal_fields=["requester", "details", "answer", "received_at", "closed_at"],
    erase=Erasure.KEEP_FOR_LEGAL_REASON,
    account_path="account",
    keep_until_field="keep_until",
    keep_years=lambda: settings.RETENTION["audit_years"],
    detach_with={"account": None},
    contact=(
        "the privacy office's register: a contact's request is in it only once handed over "
        "at the erasure of the customer's account, when no contact of the account is left"
    ),
    # Anyone may write to the operator; contacts' requests come from erased accounts.
    data_subjects=(Owner.CUSTOMER, Owner.CONTACT, Owner.VISITOR),
)
register(
    AccountExport,
    owner=Owner.CUSTOMER,
    data_subjects=(Owner.CUSTOMER, Owner.CONTACT),
    category=_("archives of all the customer's data"),
    purpose=_("giving the customer all their data, personal and application data (P20)"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_(
        "the archive and its row are deleted when it expires "
        "(TIDINGS_ACCOUNT_EXPORT_DAYS, default 7 days)"
    ),
    personal_fields=["file", "created_at", "finished_at", "expires_at"],
    shown_fields=("created_at", "format", "status", "finished_at", "expires_at"),
    erase=Erasure.DELETE,
    account_path="account",
    in_archive=False,
    description=_("Deleting the row deletes the archive."),
    contact=ContactPart(
        title=_("Archives of the customer's data that may hold you"),
        rows=_archives_holding,
        shown=False,  # the customer's copy, gone within days
        erase=ContactErasure.DELETE,  # the customer asks for a new one if they need it
    ),
)


def _expired_archives(now: datetime) -> QuerySet[AccountExport]:
    return AccountExport.objects.filter(expires_at__lte=now)


retention.register(
    "archives of all my data",
    why=lambda: (
        "an archive of all a customer's data is deleted "
        f"{settings.ACCOUNT_EXPORT_DAYS} days after it was made"
    ),
    expired=_expired_archives,
)
