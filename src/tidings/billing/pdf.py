"""An invoice or credit note as a PDF/A-3b document, in the language frozen on it (the
account's at issue), from Tidings's own template (it fetches nothing), with its Factur-X
XML embedded (billing/einvoice.py)."""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string

from tidings.billing import einvoice
from tidings.billing.models import Invoice
from tidings.core import locales

log = logging.getLogger(__name__)


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"an invoice's PDF fetches nothing ({url})")


def per_rate(invoice: Invoice) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(rate, net, VAT) for each rate on the invoice (art. 226(8)-(10))."""
    sums: dict[Decimal, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in invoice.lines.all():
        sums[line.vat_rate][0] += line.net
        sums[line.vat_rate][1] += line.vat
    return [(rate, net, vat) for rate, (net, vat) in sorted(sums.items())]


def render(invoice: Invoice) -> bytes:
    """The PDF of an issued invoice or credit note."""
    # A heavy import (cairo, pango), for this export only (as sending.reports does).
    from weasyprint import CSS, HTML

    rates = per_rate(invoice)
    with locales.language(invoice.language):
        html = render_to_string(
            "billing/invoice_pdf.html",
            {"invoice": invoice, "lines": invoice.lines.all(), "rates": rates},
        )
    # The style apart: no template carries inline style (the pages' policy forbids it).
    style = CSS(string=render_to_string("billing/invoice_pdf.css"), url_fetcher=_refuse_fetch)
    document = HTML(string=html, url_fetcher=_refuse_fetch)
    pdf = bytes(document.write_pdf(stylesheets=[style], pdf_variant="pdf/a-3b"))
    if not invoice.seller_country:
        # EN 16931 needs the seller's country: without TIDINGS_OPERATOR_COUNTRY at issue
        # the invoice is still a legal PDF, only without its Factur-X XML.
        log.warning("invoice %s: no seller country, no Factur-X XML", invoice.number)
        return pdf
    return einvoice.embed(pdf, einvoice.xml_of(invoice, rates), lang=invoice.language)


def file_name(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"
