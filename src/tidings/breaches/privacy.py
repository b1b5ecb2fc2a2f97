"""The breach register in the data map: incidents, scopes and filings hold counts,
categories and staff's words, no affected person's data; a notice says which user was
told, so it is theirs (My Account shows it) and is kept as the register's proof after
erasure with no direct identifier left (the user and account links go, the numbers
stay: counted, never re-identified)."""

from django.utils.translation import gettext_lazy as _

from tidings.breaches.models import Assessment, Filing, Incident, Notice, Scope
from tidings.core.datamap import Erasure, LegalBasis, Owner, declare_free_of_personal_data, register

declare_free_of_personal_data(
    Incident, "the operator's register of incidents: staff's account of what happened"
)
declare_free_of_personal_data(Scope, "account numbers, counts and data categories only")
declare_free_of_personal_data(
    Assessment, "a severity's figures and the officer's reasons: no affected person's data"
)
declare_free_of_personal_data(Filing, "the authority report's fields: counts and categories")
register(
    Notice,
    owner=Owner.CUSTOMER,
    category=_("breach notices"),
    purpose=_("telling people of a personal-data breach that touched their data (P33)"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("kept in the breach register (GDPR art. 33(5)), without the user's link"),
    personal_fields=["sent_at", "acknowledged_at"],
    shown_fields=("incident", "role", "sent_at", "acknowledged_at"),
    erase=Erasure.KEEP_WITHOUT_PERSONAL_DATA,
    account_path="account",
    contact="notices to the customer's users: no contact's data",
)
