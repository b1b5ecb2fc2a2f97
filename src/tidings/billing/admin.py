"""Invoices in the staff console: read-only legal records (P7, P14)."""

from __future__ import annotations

from tidings.billing.models import Invoice
from tidings.staff.admin_site import site
from tidings.staff.console import ReadOnlyAuditedAdmin


class InvoiceAdmin(ReadOnlyAuditedAdmin):
    list_display = ("number", "issued_at", "amount_cents", "currency", "billing_name", "account")
    search_fields = ("number", "billing_name")
    date_hierarchy = "issued_at"
    fields = (
        "number",
        "issued_at",
        "amount_cents",
        "currency",
        "billing_name",
        "billing_address",
        "account",
        "keep_until",
    )


site.register(Invoice, InvoiceAdmin)
