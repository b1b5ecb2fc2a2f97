"""Billing in the staff console (P7): billing staff define what is sold and see orders,
each read audited; they mark bank transfers paid through the service; other roles do
not reach billing data."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.billing.conftest import checkout, place
from tests.factories import StaffFactory
from tests.staff.conftest import log_in_verified, state_reason
from tidings.accounts.models import User
from tidings.billing import credits, invoices, renewals, services
from tidings.billing.models import Invoice, Offer, Order, Subscription
from tidings.staff.models import AuditEvent


@pytest.fixture
def billing_staff(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="billing@operator.example", staff_role=User.StaffRole.BILLING)


@pytest.fixture
def console(client):  # type: ignore[no-untyped-def]
    """Log a staff member in to the console, verified, with a stated reason."""

    def login(user: User):  # type: ignore[no-untyped-def]
        log_in_verified(client, user)
        state_reason(client)
        return client

    return login


@pytest.fixture
def transfer_order(customer, pack, settings):  # type: ignore[no-untyped-def]
    settings.BILLING = {**settings.BILLING, "bank_transfer": True}
    return place(customer, pack, method="transfer")


def test_billing_staff_define_a_credit_pack_with_its_prices(console, billing_staff):
    client = console(billing_staff)
    response = client.post(
        "/staff/admin/billing/offer/add/",
        {
            "kind": "pack", "name": "10,000 credits", "description": "", "period": "",
            "contact_limit": "", "credits": "10000", "vat_treatment": "standard",
            "vat_rate": "21", "active": "on", "position": "1",
            "prices-TOTAL_FORMS": "2", "prices-INITIAL_FORMS": "0",
            "prices-MIN_NUM_FORMS": "0", "prices-MAX_NUM_FORMS": "1000",
            "prices-0-currency": "EUR", "prices-0-amount": "79.00",
            "prices-1-currency": "CHF", "prices-1-amount": "75.50",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    offer = Offer.objects.get(name="10,000 credits")
    assert {(p.currency, p.amount) for p in offer.prices.all()} == {
        ("EUR", Decimal("79.00")),
        ("CHF", Decimal("75.50")),
    }
    assert AuditEvent.objects.filter(
        action="create", target_type="billing.Offer", actor_id=billing_staff.pk
    ).exists()


@pytest.mark.promise("P7")
def test_billing_staff_read_orders_and_every_read_is_audited(
    console, billing_staff, customer, pack
):
    order = place(customer, pack)
    client = console(billing_staff)
    listing = client.get("/staff/admin/billing/order/")
    assert listing.status_code == 200 and order.reference in listing.content.decode()
    assert AuditEvent.objects.filter(
        action="list", target_type="billing.Order", target_id=str(order.pk),
        account_id=customer.account_id, actor_role="billing",
    ).exists()  # fmt: skip
    page = client.get(f"/staff/admin/billing/order/{order.pk}/change/")
    assert "Analytical Engines Ltd" in page.content.decode()
    read = AuditEvent.objects.get(action="read", target_type="billing.Order")
    assert "billing_address" in read.fields and read.account_id == customer.account_id


@pytest.mark.promise("P7")
def test_other_roles_do_not_reach_orders(console, customer, pack):
    place(customer, pack)
    agent = StaffFactory(email="agent2@operator.example", staff_role=User.StaffRole.SUPPORT)
    client = console(agent)
    assert client.get("/staff/admin/billing/order/").status_code == 403
    assert client.get("/staff/admin/billing/webhookevent/").status_code == 403


@pytest.mark.promise("P4")
def test_billing_staff_mark_a_bank_transfer_paid(console, billing_staff, transfer_order):
    client = console(billing_staff)
    url = f"/staff/admin/billing/order/{transfer_order.pk}/transfer-received/"
    client.post(url, {"amount": "1.00", "currency": "EUR"})  # not the order's amount
    transfer_order.refresh_from_db()
    assert transfer_order.status == Order.Status.AWAITING_TRANSFER
    # 9.90 and 21 % VAT (2.079, half up to 2.08): what the invoice says is due.
    client.post(url, {"amount": "11.98", "currency": "EUR"})
    transfer_order.refresh_from_db()
    assert transfer_order.status == Order.Status.PAID
    assert credits.balance_of(transfer_order.account).available == 1005
    assert AuditEvent.objects.filter(
        action="update", target_type="billing.Order", actor_id=billing_staff.pk
    ).exists()
    client.post(url, {"amount": "11.98", "currency": "EUR"})  # twice: credited once
    assert credits.balance_of(transfer_order.account).available == 1005


def test_a_support_agent_cannot_mark_a_transfer_paid(console, transfer_order):
    agent = StaffFactory(email="agent3@operator.example", staff_role=User.StaffRole.SUPPORT)
    client = console(agent)
    url = f"/staff/admin/billing/order/{transfer_order.pk}/transfer-received/"
    assert client.post(url, {"amount": "9.90", "currency": "EUR"}).status_code == 403
    transfer_order.refresh_from_db()
    assert transfer_order.status == Order.Status.AWAITING_TRANSFER


def test_billing_staff_see_an_issued_invoice_and_its_credit_note_audited(
    console, billing_staff, transfer_order
):
    invoice = Invoice.objects.get(order=transfer_order)
    note = invoices.credit_note(invoice, by=billing_staff)
    client = console(billing_staff)
    listing = client.get("/staff/admin/billing/invoice/").content.decode()
    assert invoice.number in listing and note.number in listing
    page = client.get(f"/staff/admin/billing/invoice/{note.pk}/change/").content.decode()
    assert note.number in page and invoice.number in page and "Analytical Engines Ltd" in page
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ, target_id=str(note.pk)).exists()


@pytest.mark.promise("P7")
def test_billing_staff_download_an_invoice_and_each_download_is_audited(
    console, billing_staff, transfer_order
):
    invoice = Invoice.objects.get(order=transfer_order)
    client = console(billing_staff)
    page = client.get(f"/staff/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    assert f"/staff/admin/billing/invoice/{invoice.pk}/pdf/" in page
    response = client.get(f"/staff/admin/billing/invoice/{invoice.pk}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    event = AuditEvent.objects.get(action="export", target_type="billing.Invoice")
    assert event.actor_id == billing_staff.pk and event.reason and event.fields == ["pdf"]


def test_billing_staff_credit_part_of_an_invoice(console, billing_staff, transfer_order):
    invoice = Invoice.objects.get(order=transfer_order)
    client = console(billing_staff)
    response = client.post(
        f"/staff/admin/billing/invoice/{invoice.pk}/credit-note/", {"amount": "5,00"}
    )
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert response["Location"] == f"/staff/admin/billing/invoice/{note.pk}/change/"
    assert (note.original, note.total, note.number) == (invoice, Decimal("-5.00"), "CN-000001")
    assert AuditEvent.objects.filter(
        action="create", target_type="billing.Invoice", target_id=str(note.pk),
        actor_id=billing_staff.pk,
    ).exists()  # fmt: skip


@pytest.mark.parametrize("amount", ["abc", "0", "-3", "1000", "NaN", "Infinity"])
def test_a_credit_note_of_a_wrong_amount_is_refused_and_changes_nothing(
    console, billing_staff, transfer_order, amount
):
    invoice = Invoice.objects.get(order=transfer_order)
    client = console(billing_staff)
    client.post(f"/staff/admin/billing/invoice/{invoice.pk}/credit-note/", {"amount": amount})
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()
    page = client.get(f"/staff/admin/billing/invoice/{invoice.pk}/change/").content.decode()
    said = "Give the amount to credit." if amount in ("abc", "NaN", "Infinity") else "at most"
    assert said in page


@pytest.mark.promise("P7")
def test_other_roles_neither_download_nor_credit_invoices(console, transfer_order):
    invoice = Invoice.objects.get(order=transfer_order)
    agent = StaffFactory(email="agent3@operator.example", staff_role=User.StaffRole.SUPPORT)
    client = console(agent)
    assert client.get(f"/staff/admin/billing/invoice/{invoice.pk}/pdf/").status_code == 403
    url = f"/staff/admin/billing/invoice/{invoice.pk}/credit-note/"
    assert client.post(url, {"amount": "1"}).status_code == 403
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_invoices_are_not_written_by_hand_in_the_console(console, billing_staff):
    assert console(billing_staff).get("/staff/admin/billing/invoice/add/").status_code == 403


def test_billing_staff_see_each_plans_renewal_and_dunning_and_drive_a_test_renewal(
    console, billing_staff, customer, plan, mailbox
):
    order = place(customer, plan)
    checkout(order)
    services.pay_on_test_gateway(order.gateway_ref, "pay")
    sub = Subscription.objects.get(order=order)
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    renewal = Order.objects.get(renewal_of=sub)
    client = console(billing_staff)
    page = client.get(f"/staff/admin/billing/order/{renewal.pk}/change/").content.decode()
    assert "Renewal on the test gateway" in page
    client.post(f"/staff/admin/billing/order/{renewal.pk}/test-renewal/", {"outcome": "fail"})
    renewal.refresh_from_db()
    assert renewal.status == Order.Status.FAILED
    listing = client.get("/staff/admin/billing/subscription/").content.decode()
    assert "Told of the failed payment" in listing
    assert AuditEvent.objects.filter(
        target_type="billing.Order", target_id=str(renewal.pk), reason="payment: failed"
    ).exists()
    agent = StaffFactory(email="agent4@operator.example", staff_role=User.StaffRole.SUPPORT)
    other = console(agent)
    assert other.get("/staff/admin/billing/subscription/").status_code == 403
    url = f"/staff/admin/billing/order/{renewal.pk}/test-renewal/"
    assert other.post(url, {"outcome": "pay"}).status_code == 403
    renewal.refresh_from_db()
    assert renewal.status == Order.Status.FAILED
