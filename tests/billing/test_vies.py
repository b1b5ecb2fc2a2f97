"""VIES: a business buyer's VAT number is confirmed by the EU's register before the
reverse charge applies, the answer is recorded with its date and consultation number, and
a VIES that does not answer leaves the number pending and retried, never valid (issue 17).
The service is a local fake giving replies recorded from VIES (tests/billing/vies)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from tests.billing.conftest import checkout, place
from tests.billing.test_invoices import FRENCH_COMPANY, _seller, pdf_text  # noqa: F401
from tests.factories import StaffFactory
from tests.staff.conftest import log_in_verified, state_reason
from tidings.accounts.models import User
from tidings.billing import pdf, renewals, services
from tidings.billing import vies as vies_service
from tidings.billing.models import Invoice, Order, Subscription, VatCheck
from tidings.staff.models import AuditEvent


def paid(order: Order) -> Order:
    services.pay_on_test_gateway(checkout(order), "pay")
    order.refresh_from_db()
    return order


def test_a_number_vies_confirms_is_reverse_charged_with_the_consultation_on_the_invoice(
    customer, pack, vies
):
    order = place(customer, pack, **FRENCH_COMPANY)
    assert order.reverse_charge and order.amount == Decimal("9.90")  # no VAT charged
    check = VatCheck.objects.get(order=order)
    assert (check.status, check.consultation) == ("valid", "WAPIAAAAZ6kR3x9Q")
    assert check.checked_at is not None and check.next_try_at is None
    # The operator's own number is sent, so VIES gives a consultation number.
    assert vies.requests == [
        {
            "countryCode": "FR",
            "vatNumber": "40303265045",
            "requesterMemberStateCode": "NL",
            "requesterNumber": "123456789B13",
        }
    ]
    invoice = Invoice.objects.get(order=paid(order))
    assert invoice.reverse_charge and invoice.vies_consultation == "WAPIAAAAZ6kR3x9Q"
    assert "consultation number WAPIAAAAZ6kR3x9Q" in pdf_text(pdf.render(invoice))


def test_a_number_vies_does_not_list_is_refused_and_changes_nothing(customer, pack, vies):
    vies.reply = "invalid"
    with pytest.raises(services.OrderRefused, match="does not list FR40303265045"):
        place(customer, pack, **FRENCH_COMPANY)
    assert not Order.objects.exists() and not VatCheck.objects.exists()


@pytest.mark.parametrize("reply", ["ms_unavailable", None], ids=["vies-busy", "hung-up"])
def test_when_vies_does_not_answer_the_number_stays_pending_and_vat_is_charged(
    customer, pack, vies, reply
):
    vies.reply = reply
    order = place(customer, pack, **FRENCH_COMPANY)
    assert not order.reverse_charge and order.amount == Decimal("11.98")  # 9.90 + 21 %
    check = VatCheck.objects.get(order=order)
    assert check.status == "pending" and check.checked_at is None
    assert check.error == ("MS_UNAVAILABLE" if reply else "ConnectionError")
    assert check.next_try_at is not None
    invoice = Invoice.objects.get(order=paid(order))
    assert not invoice.reverse_charge and invoice.vat == Decimal("2.08")


def test_a_pending_check_is_asked_again_until_vies_answers(customer, pack, vies):
    vies.reply = "ms_unavailable"
    order = place(customer, pack, **FRENCH_COMPANY)
    check = VatCheck.objects.get(order=order)
    now = timezone.now()
    assert services.retry_vies_checks(now) == 0  # not due yet
    later = check.next_try_at + timedelta(seconds=1)
    assert services.retry_vies_checks(later) == 1  # still down: due again later
    check.refresh_from_db()
    assert (check.status, check.attempts) == ("pending", 2)
    assert check.next_try_at - later == vies_module_retry(2)
    vies.reply = "valid"
    assert services.retry_vies_checks(check.next_try_at) == 1
    check.refresh_from_db()
    assert (check.status, check.consultation) == ("valid", "WAPIAAAAZ6kR3x9Q")
    assert check.checked_at is not None and check.next_try_at is None
    assert AuditEvent.objects.filter(target_type="billing.VatCheck", target_id=str(check.pk))
    # What the order was charged does not change after the fact.
    order.refresh_from_db()
    assert not order.reverse_charge and order.amount == Decimal("11.98")
    assert services.retry_vies_checks(check.next_try_at or later + timedelta(days=9)) == 0


def vies_module_retry(attempts: int) -> timedelta:
    return vies_service.FIRST_RETRY * 2 ** (attempts - 1)


def test_retries_end_after_the_last_attempt(customer, pack, vies):
    vies.reply = None
    check = VatCheck.objects.get(order=place(customer, pack, **FRENCH_COMPANY))
    for _ in range(vies_service.MAX_ATTEMPTS):
        if check.next_try_at is None:
            break
        services.retry_vies_checks(check.next_try_at)
        check.refresh_from_db()
    assert check.status == "pending" and check.next_try_at is None
    assert check.attempts == vies_service.MAX_ATTEMPTS


@pytest.mark.parametrize(
    "who",
    [
        {"billing_country": "NL", "vat_number": "NL123456789B13"},  # the seller's country
        {**FRENCH_COMPANY, "buyer_kind": "person", "vat_number": ""},  # a person
        {"billing_country": "GB", "vat_number": "GB123456789"},  # not an EU number
    ],
)
def test_vies_is_asked_only_where_the_reverse_charge_could_apply(customer, pack, vies, who):
    order = place(customer, pack, **who)
    assert vies.requests == [] and not VatCheck.objects.filter(order=order).exists()


def test_the_order_page_says_before_payment_that_vat_is_charged_when_vies_is_down(
    client, customer, pack, vies
):
    vies.reply = "ms_unavailable"
    client.force_login(customer)
    form = {**FRENCH_COMPANY, "currency": "EUR", "method": "test"}
    response = client.post(f"/account/billing/order/{pack.pk}/", form, follow=True)
    page = response.content.decode()
    assert "did not answer" in page and "11.98 EUR" in page
    order = Order.objects.get()
    assert order.status == Order.Status.CREATED and not order.gateway_ref  # not sent to pay


def test_billing_staff_see_what_vies_said_on_the_order(client, customer, pack):
    order = place(customer, pack, **FRENCH_COMPANY)
    staff = StaffFactory(email="billing@operator.example", staff_role=User.StaffRole.BILLING)
    log_in_verified(client, staff)
    state_reason(client)
    page = client.get(f"/staff/admin/billing/order/{order.pk}/change/").content.decode()
    assert "Confirmed by VIES" in page and "consultation WAPIAAAAZ6kR3x9Q" in page


def test_a_renewal_is_reverse_charged_on_the_check_of_the_order_that_bought_the_plan(
    customer, plan
):
    order = paid(place(customer, plan, **FRENCH_COMPANY))
    subscription = Subscription.objects.get(order=order)
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    renewal = Order.objects.get(renewal_of=subscription)
    services.renew_on_test_gateway(renewal, "pay")
    invoice = Invoice.objects.get(order=renewal)
    assert invoice.reverse_charge and invoice.vies_consultation == "WAPIAAAAZ6kR3x9Q"
