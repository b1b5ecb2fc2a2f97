"""The invoice as Factur-X (EN 16931, the CII syntax) XML, embedded in its PDF: an
accountant's software reads it without retyping, and the same data can later go out
as a Peppol e-invoice. Checked against the Factur-X XSD (the `factur-x` package's)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import facturx
from django.template.loader import render_to_string

from tidings.billing.models import Invoice, InvoiceLine, VatTreatment

# EN 16931 document types (UNTDID 1001) and VAT categories (UNTDID 5305).
INVOICE, CREDIT_NOTE = "380", "381"
STANDARD, REVERSE_CHARGE, EXEMPT = "S", "AE", "E"


def _category(invoice: Invoice) -> tuple[str, str]:
    """The VAT category and, when no VAT is charged, the reason the standard asks for."""
    if invoice.reverse_charge:
        return REVERSE_CHARGE, "Reverse charge"
    order = invoice.order or (invoice.original.order if invoice.original else None)
    if invoice.vat == 0 and (order is None or order.offer.vat_treatment == VatTreatment.EXEMPT):
        return EXEMPT, "Exempt from VAT"
    return STANDARD, ""


def _abs_line(line: InvoiceLine) -> dict[str, Any]:
    # A credit note's amounts are positive in CII: its type says it credits.
    return {
        "description": line.description,
        "quantity": line.quantity,
        "unit_price": abs(line.unit_price),
        "net": abs(line.net),
        "vat_rate": line.vat_rate,
    }


def xml_of(invoice: Invoice, rates: list[tuple[Decimal, Decimal, Decimal]]) -> bytes:
    category, exemption = _category(invoice)
    context = {
        "invoice": invoice,
        "type_code": CREDIT_NOTE if invoice.kind == Invoice.Kind.CREDIT_NOTE else INVOICE,
        "lines": [_abs_line(line) for line in invoice.lines.all()],
        "rates": [(rate, abs(net), abs(vat)) for rate, net, vat in rates],
        "category": category,
        "exemption": exemption,
        "seller_address": " ".join(invoice.seller_address.split()),
        "buyer_address": " ".join(invoice.billing_address.split()),
        "net": abs(invoice.net),
        "vat": abs(invoice.vat),
        "total": abs(invoice.total),
        "due": Decimal("0.00") if invoice.paid_at else abs(invoice.total),
    }
    return render_to_string("billing/invoice_cii.xml", context).encode()


class NotFacturX(ValueError):
    """The XML does not follow the Factur-X EN 16931 schema; the message says where."""


def check(xml: bytes) -> None:
    """Raises NotFacturX if `xml` does not follow the Factur-X EN 16931 schema."""
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as error:  # the library raises a bare Exception
        raise NotFacturX(str(error)) from error


def embed(pdf: bytes, xml: bytes, *, lang: str) -> bytes:
    """The PDF/A-3 with the XML attached as factur-x.xml, checked against the XSD."""
    return bytes(
        facturx.generate_from_binary(
            pdf, xml, flavor="factur-x", level="en16931", check_xsd=True, lang=lang
        )
    )
