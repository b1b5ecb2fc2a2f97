"""P14 end to end: a customer orders and pays, gets an invoice, closes the account; after
erasure only the invoice (and its credit note) with the billing identity the law needs
remain, detached from everything, until the legal period ends."""

from __future__ import annotations

import pytest
from django.db.models import Model

from tests.billing.conftest import BILLING_IDENTITY
from tidings.accounts.models import Account, User
from tidings.billing import invoices
from tidings.billing.models import CreditEntry, Invoice, InvoiceLine, Order, WebhookEvent
from tidings.privacy.tasks import delete_expired_legal_holds, erase_due_accounts


def _values(row: Model) -> str:
    return " ".join(str(getattr(row, f.attname)) for f in row._meta.concrete_fields)


@pytest.mark.promise("P14")
def test_after_erasure_only_the_invoices_and_their_billing_identity_remain(
    client, customer, password, pack, mailbox, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to("2026-03-01 12:00Z", tick=False)
    account_id = customer.account_id
    client.force_login(customer)
    # Order and pay on the test gateway's hosted page, as a customer does.
    form = {**BILLING_IDENTITY, "currency": "EUR", "method": "test"}
    hosted = client.post(f"/account/billing/order/{pack.pk}/", form)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(hosted.replace("http://testserver", ""), {"outcome": "pay"})
    invoice = Invoice.objects.get(account_id=account_id)
    assert client.get(f"/account/billing/invoices/{invoice.pk}/pdf/").status_code == 200
    note = invoices.credit_note(invoice, amount=invoice.total / 2)

    # Close the account; the erasure job runs after the grace period.
    client.post("/account/close/", {"password": password})
    assert Account.objects.get(pk=account_id).status != Account.Status.ACTIVE
    time_machine.move_to("2026-05-01 12:00Z", tick=False)
    assert erase_due_accounts() == 1

    # The rest is gone ...
    assert not User.objects.filter(pk=customer.pk).exists()
    assert not Account.objects.filter(pk=account_id).exists()
    for model in (Order, WebhookEvent, CreditEntry):
        assert not model.objects.filter(account_id=account_id).exists(), model
    # ... the invoice and its credit note remain, detached, with what the law needs.
    kept = Invoice.objects.order_by("pk")
    assert list(kept) == [invoice, note]
    for row in kept:
        assert (row.account_id, row.order_id) == (None, None)
        assert row.billing_name == "Analytical Engines Ltd"
        assert row.vat_number == "GB123456789"
        assert row.keep_until.year == 2036
        # Nothing of the customer beyond the billing identity: no email, no person's name.
        text = _values(row) + " ".join(_values(line) for line in row.lines.all())
        assert customer.email not in text and customer.name not in text
    assert InvoiceLine.objects.count() == 2

    # Until the legal period ends, then the retention job deletes them.
    time_machine.move_to("2036-04-30 12:00Z", tick=False)
    delete_expired_legal_holds()
    assert Invoice.objects.count() == 2
    time_machine.move_to("2036-05-02 12:00Z", tick=False)
    delete_expired_legal_holds()
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()
