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
from tidings.billing import invoices, pdf, renewals, services
from tidings.billing import vies as vies_service
from tidings.billing.models import (
    Invoice,
    Offer,
    Order,
    Price,
    Subscription,
    VatCheck,
    VatTreatment,
)
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


@pytest.fixture
def vat_plan(db) -> Offer:  # type: ignore[no-untyped-def]
    """A monthly plan with 21 % VAT added (none under the reverse charge)."""
    offer = Offer.objects.create(
        kind=Offer.Kind.PLAN, name="Pro", period=Offer.Period.MONTH,
        vat_treatment=VatTreatment.STANDARD, vat_rate=Decimal("21.00"),
    )  # fmt: skip
    Price.objects.create(offer=offer, currency="EUR", amount=Decimal("29.00"))
    return offer


def renew(subscription: Subscription) -> Order:
    """The period ends: the renewal job opens the renewal (VIES asked again)."""
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1
    return Order.objects.get(renewal_of=subscription)


@pytest.mark.promise("P4")
def test_each_renewal_asks_vies_afresh_and_its_invoice_prints_its_own_check(
    customer, vat_plan, vies
):
    order = paid(place(customer, vat_plan, **FRENCH_COMPANY))
    assert order.reverse_charge and order.amount == Decimal("29.00")
    subscription = Subscription.objects.get(order=order)
    renewal = renew(subscription)
    assert len(vies.requests) == 2  # asked again at the renewal
    check = VatCheck.objects.get(order=renewal)
    assert (check.status, check.consultation) == ("valid", "WAPIAAAAZ6kR3x9Q")
    assert check.requested_at > VatCheck.objects.get(order=order).requested_at
    assert renewal.reverse_charge and renewal.amount == Decimal("29.00")
    services.renew_on_test_gateway(renewal, "pay")
    invoice = Invoice.objects.get(order=renewal)
    assert invoice.reverse_charge and invoice.vies_consultation == check.consultation


@pytest.mark.promise("P4")
def test_a_number_vies_no_longer_lists_is_charged_and_invoiced_with_vat_at_the_renewal(
    client, customer, vat_plan, vies
):
    order = paid(place(customer, vat_plan, **FRENCH_COMPANY))
    subscription = Subscription.objects.get(order=order)
    vies.reply = "invalid"
    renewal = renew(subscription)
    check = VatCheck.objects.get(order=renewal)
    assert check.status == "invalid" and check.consultation == ""
    # 29.00 and 21 % VAT: what the renewal's page charges and what its invoice says.
    assert not renewal.reverse_charge and renewal.amount == Decimal("35.09")
    client.force_login(customer)
    page = client.get(f"/pay/test/{renewal.gateway_ref}/").content.decode()
    assert "35.09" in page
    status, _outcome = services.renew_on_test_gateway(renewal, "pay")
    assert status == 200
    renewal.refresh_from_db()
    assert renewal.status == Order.Status.PAID
    invoice = Invoice.objects.get(order=renewal)
    assert not invoice.reverse_charge and invoice.vies_consultation == ""
    assert (invoice.net, invoice.vat, invoice.total) == (
        Decimal("29.00"),
        Decimal("6.09"),
        Decimal("35.09"),
    )
    # The next renewal, VIES listing the number again: reverse charged again, the net.
    subscription.refresh_from_db()
    vies.reply = "valid"
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1
    later = Order.objects.filter(renewal_of=subscription).order_by("-period_end").first()
    assert later.reverse_charge and later.amount == Decimal("29.00")


def test_a_transfer_renewal_vies_no_longer_lists_gets_its_unpaid_invoice_with_vat(
    customer, vat_plan, vies, settings
):
    settings.BILLING = {**settings.BILLING, "bank_transfer": True}
    order = place(customer, vat_plan, method="transfer", **FRENCH_COMPANY)
    staff = StaffFactory(email="billing@operator.example", staff_role=User.StaffRole.BILLING)
    services.mark_transfer_paid(order, by=staff, amount=order.amount, currency="EUR")
    vies.reply = "invalid"
    renewal = renew(Subscription.objects.get(order=order))
    assert renewal.status == Order.Status.AWAITING_TRANSFER
    invoice = Invoice.objects.get(order=renewal)
    assert invoice.paid_at is None and not invoice.reverse_charge
    assert invoice.total == renewal.amount == Decimal("35.09")
    with pytest.raises(services.OrderRefused):  # the net is no longer what is due
        services.mark_transfer_paid(renewal, by=staff, amount=Decimal("29.00"), currency="EUR")
    services.mark_transfer_paid(renewal, by=staff, amount=Decimal("35.09"), currency="EUR")


@pytest.mark.parametrize("reply", ["ms_unavailable", None], ids=["vies-busy", "hung-up"])
def test_when_vies_does_not_answer_at_the_renewal_the_previous_valid_check_stands(
    customer, vat_plan, vies, reply
):
    order = paid(place(customer, vat_plan, **FRENCH_COMPANY))
    first = VatCheck.objects.get(order=order)
    subscription = Subscription.objects.get(order=order)
    vies.reply = reply
    renewal = renew(subscription)
    check = VatCheck.objects.get(order=renewal)
    assert check.status == "pending" and check.next_try_at is not None
    assert renewal.reverse_charge and renewal.amount == Decimal("29.00")
    services.renew_on_test_gateway(renewal, "pay")
    invoice = Invoice.objects.get(order=renewal)
    assert invoice.reverse_charge and invoice.vies_consultation == first.consultation
    # The retry job asks again, as for any pending check, and records the answer.
    vies.reply = "valid"
    assert services.retry_vies_checks(check.next_try_at) == 1
    check.refresh_from_db()
    assert check.status == "valid" and check.checked_at is not None


def test_a_renewal_with_vies_down_after_a_refusal_stays_with_vat(customer, vat_plan, vies):
    order = paid(place(customer, vat_plan, **FRENCH_COMPANY))
    subscription = Subscription.objects.get(order=order)
    vies.reply = "invalid"
    services.renew_on_test_gateway(renew(subscription), "pay")
    subscription.refresh_from_db()
    vies.reply = "ms_unavailable"
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1
    later = Order.objects.filter(renewal_of=subscription).order_by("-period_end").first()
    # The previous decision stands: VAT, since the number was not confirmed then.
    assert not later.reverse_charge and later.amount == Decimal("35.09")


def test_the_listed_price_of_an_order_placed_before_it_was_recorded_is_found_back(
    customer, vat_plan
):
    with_vat = place(customer, vat_plan)  # GB: VAT added
    reverse = place(customer, vat_plan, **FRENCH_COMPANY)
    for order, listed in ((with_vat, Decimal("29.00")), (reverse, Decimal("29.00"))):
        assert order.listed_amount == listed
        Order.objects.filter(pk=order.pk).update(listed_amount=None)
        order.refresh_from_db()
        assert invoices.listed_price(order) == listed
