"""P14 end to end: a customer orders and pays, gets an invoice, closes the account; after
erasure only the invoice (and its credit note) with the billing identity the law needs
remain, detached from everything, until the legal period ends."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

from tests.billing.conftest import BILLING_IDENTITY, checkout, place
from tidings.accounts.models import Account, User
from tidings.billing import invoices, services
from tidings.billing.models import CreditEntry, Invoice, InvoiceLine, Order, WebhookEvent
from tidings.privacy.services import erase_account
from tidings.privacy.tasks import delete_expired_legal_holds, erase_due_accounts
from tidings.settings import envcountryyears


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


@pytest.mark.promise("P14")
def test_each_invoice_is_kept_for_the_longer_of_its_seller_and_buyer_countrys_periods(
    customer, pack, settings, time_machine
):
    """TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY: the seller in NL (7 years), a buyer in
    Germany (12), one in the Netherlands (7), one in France (not set: the default, 10)."""
    time_machine.move_to("2026-03-01 12:00Z", tick=False)
    settings.OPERATOR = {**settings.OPERATOR, "country": "NL"}
    settings.RETENTION = {**settings.RETENTION, "invoice_years_by_country": {"NL": 7, "DE": 12}}
    numbers = {}
    for country in ("DE", "NL", "FR"):
        order = place(customer, pack, buyer_kind="person", vat_number="", billing_country=country)
        services.pay_on_test_gateway(checkout(order), "pay")
        numbers[country] = Invoice.objects.get(order=order).number
    account = customer.account
    account.status = Account.Status.CLOSED
    account.save()
    erase_account(account.pk)
    kept = {i.number: i.keep_until.year for i in Invoice.objects.all()}
    assert kept == {numbers["DE"]: 2038, numbers["NL"]: 2033, numbers["FR"]: 2036}


@pytest.mark.parametrize("value", ["DE=ten", "XX=7", "DE=0", "DE"])
def test_a_country_period_that_is_not_one_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY", value)
    with pytest.raises(ImproperlyConfigured, match="COUNTRY=YEARS"):
        envcountryyears("TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY")


def test_country_periods_are_read_as_codes_and_years(monkeypatch):
    monkeypatch.setenv("TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY", " de=12, NL = 7 ,")
    assert envcountryyears("TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY") == {"DE": 12, "NL": 7}
