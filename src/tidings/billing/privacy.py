from django.conf import settings
from django.utils.translation import gettext_lazy as _

from tidings.billing.models import Invoice
from tidings.core.datamap import Erasure, LegalBasis, Owner, register

register(
    Invoice,
    owner=Owner.CUSTOMER,
    category=_("billing"),
    purpose=_("invoicing and the legal accounting obligation"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_(
        "while the account exists, then the legal accounting period "
        "(TIDINGS_INVOICE_RETENTION_YEARS, default 10 years)"
    ),
    personal_fields=["billing_name", "billing_address"],
    erase=Erasure.KEEP_FOR_LEGAL_REASON,
    account_path="account",
    keep_until_field="keep_until",
    keep_years=lambda: settings.RETENTION["invoice_years"],
    detach_with={"account": None},
    contact="the customer's invoices: no contact's data",
)
