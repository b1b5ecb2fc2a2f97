"""An issued invoice (or credit note) is mailed to the account's users with its PDF
attached, once, through the one pipeline to a real SMTP server; the ledger keeps the
attachment's name, not the file."""

from __future__ import annotations

import io
from datetime import timedelta

import time_machine
from pypdf import PdfReader

from tests.billing.conftest import checkout, place, post_test_webhook, session_event
from tidings.billing import renewals, services
from tidings.billing.models import Invoice, Order, Subscription
from tidings.sending.models import OutboundMail


def invoices_in(smtp_mail) -> list[tuple[str, str, bytes]]:  # type: ignore[no-untyped-def]
    """(subject, recipient, PDF) of each invoice mail the SMTP server received."""
    found = []
    for message in smtp_mail.messages:
        for part in message.iter_attachments():
            if part.get_content_type() == "application/pdf":
                found.append(
                    (str(message["Subject"]), message["X-Envelope-To"], part.get_content())
                )
    return found


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_a_paid_order_mails_its_invoice_with_the_pdf_once(client, customer, pack, smtp_mail):
    order = place(customer, pack)
    checkout(order)
    body = session_event(order, event_id="evt_paid")
    for _ in range(3):  # the gateway delivers it again: one invoice, one mail
        assert post_test_webhook(client, body).status_code == 200
    invoice = Invoice.objects.get(order=order)
    ((subject, to, content),) = invoices_in(smtp_mail)
    assert subject == f"Invoice {invoice.number}" and to == customer.email
    text = pdf_text(content)
    assert invoice.number in text and "11.98" in text
    (posted,) = [m for m in OutboundMail.objects.all() if m.attachments]
    assert posted.attachments == [f"invoice:{invoice.pk}"] and posted.status == "sent"
    mail = next(m for m in smtp_mail.messages if m["Subject"] == subject)
    assert "is attached as a PDF. It is paid." in mail.get_body(("plain",)).get_content()


def test_a_credit_note_and_a_renewals_invoice_are_mailed_too(client, customer, plan, smtp_mail):
    order = place(customer, plan)
    checkout(order)
    services.pay_on_test_gateway(order.gateway_ref, "pay")
    sub = Subscription.objects.get(order=order)
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
        renewal = Order.objects.get(renewal_of=sub)
        services.renew_on_test_gateway(renewal, "pay")
    order.refresh_from_db()
    services.refund_on_test_gateway(order)
    numbers = [
        Invoice.objects.get(order=renewal).number,
        Invoice.objects.get(kind="credit_note").number,
    ]
    subjects = [subject for subject, _to, _pdf in invoices_in(smtp_mail)]
    assert f"Invoice {numbers[0]}" in subjects and f"Credit note {numbers[1]}" in subjects
    assert len(subjects) == 3  # the plan's, the renewal's, the credit note


def test_no_invoice_mail_to_a_restricted_account(client, customer, pack, smtp_mail):
    customer.account.restricted_at = customer.account.created_at
    customer.account.save(update_fields=["restricted_at"])
    order = place(customer, pack)
    checkout(order)
    post_test_webhook(client, session_event(order))
    assert Invoice.objects.filter(order=order).exists()
    assert invoices_in(smtp_mail) == []
