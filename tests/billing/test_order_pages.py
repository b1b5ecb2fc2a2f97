"""Ordering as a customer does it: the pricing page, the billing identity asked only
here, the hosted page, back in Tidings; fulfilled only by the webhook."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.core import mail

from tests.billing.conftest import BILLING_IDENTITY, place
from tidings.billing import credits, services
from tidings.billing.models import Order
from tidings.privacy.models import CollectionRecord

FORM = {**BILLING_IDENTITY, "currency": "EUR", "method": "test"}


def test_the_pricing_page_shows_plans_and_packs_to_anyone(client, pack, plan):
    page = client.get("/pricing/").content.decode()
    assert "1,000 credits" in page and "9.90 EUR" in page and "10.90 USD" in page
    assert "Starter" in page and "29.00 EUR" in page
    assert "5 free credits" in page
    assert 'src="http' not in page  # nothing loaded from a third party


def test_the_buyer_sees_the_vat_rate_before_the_payment_page(client, customer, pack, plan):
    """The pricing page and the order page say at which rate VAT is added (the total
    charged on the provider's page is the price plus that VAT), not the console's label
    for the operator."""
    pricing = client.get("/pricing/").content.decode()
    assert "9.90 EUR + VAT at 21 %" in pricing and "10.90 USD + VAT at 21 %" in pricing
    assert "VAT added at the rate given" not in pricing
    assert "Reverse charge for business buyers" in pricing  # the plan's treatment, told
    client.force_login(customer)
    order = client.get(f"/account/billing/order/{pack.pk}/").content.decode()
    assert "9.90 EUR + VAT at 21 %" in order
    pack.vat_treatment, pack.vat_rate = "included", "5.5"
    pack.save()
    assert "9.90 EUR VAT at 5.50 % included" in client.get("/pricing/").content.decode()


@pytest.mark.promise("P1")
def test_registration_asks_no_billing_identity_ordering_does(client, customer, pack):
    register = client.get("/register/").content.decode()
    assert "VAT" not in register
    client.force_login(customer)
    page = client.get(f"/account/billing/order/{pack.pk}/").content.decode()
    for field in ("billing_name", "billing_address", "billing_country", "vat_number"):
        assert f'name="{field}"' in page


@pytest.mark.promise("P4", "P10", "P2")
def test_ordering_pays_on_the_hosted_page_and_only_the_webhook_fulfils(
    client, customer, pack, django_capture_on_commit_callbacks
):
    client.force_login(customer)
    response = client.post(f"/account/billing/order/{pack.pk}/", FORM)
    assert response.status_code == 302
    hosted = response["Location"]
    assert "/pay/test/" in hosted
    order = Order.objects.get(account=customer.account)
    assert order.billing_name == "Analytical Engines Ltd" and order.gateway_ref in hosted
    records = CollectionRecord.objects.filter(point="order", account=customer.account)
    collected = {item for r in records for item in r.data_collected}
    assert {"billing name", "billing address", "country", "VAT number"} <= collected
    assert {r.legal_basis for r in records} == {"legal obligation"}

    # Coming back to the success address fulfils nothing.
    back = client.get(f"/account/billing/orders/{order.uuid}/")
    assert "Awaiting payment" in back.content.decode()
    assert credits.balance_of(customer.account).available == 5

    page = client.get(hosted.replace("http://testserver", "")).content.decode()
    assert "no money moves" in page and 'name="card' not in page
    with django_capture_on_commit_callbacks(execute=True):
        answered = client.post(hosted.replace("http://testserver", ""), {"outcome": "pay"})
    assert answered.status_code == 302
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert credits.balance_of(customer.account).available == 1005
    billing = client.get("/account/billing/").content.decode()
    assert order.reference in billing and "Paid" in billing and "1005" in billing
    assert any(order.reference in m.subject for m in mail.outbox)


def test_a_second_click_on_pay_reuses_the_same_session(client, customer, pack):
    order = place(customer, pack)
    first = services.start_checkout(order, success_url="http://t/", cancel_url="http://t/")
    second = services.start_checkout(order, success_url="http://t/", cancel_url="http://t/")
    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"billing_name": ""},
        {"billing_country": "G1"},
        {"billing_country": "XX"},  # two letters, but no country's
        {"billing_country": "be"},
        {"billing_address": "pay with 4111 1111 1111 1111"},
        {"buyer_kind": "robot"},
        {"currency": "JPY"},
        {"billing_name": "a\x00b"},
    ],
)
def test_bad_order_input_gets_a_clear_error_and_writes_nothing(client, customer, pack, change):
    client.force_login(customer)
    response = client.post(f"/account/billing/order/{pack.pk}/", {**FORM, **change})
    assert response.status_code == 200
    assert re.search(r'class="errorlist', response.content.decode())
    assert not Order.objects.exists()
    assert not CollectionRecord.objects.filter(point="order").exists()


def test_an_inactive_offer_cannot_be_ordered(client, customer, pack):
    pack.active = False
    pack.save()
    client.force_login(customer)
    assert client.get(f"/account/billing/order/{pack.pk}/").status_code == 404


def test_orders_are_seen_by_their_own_account_only(client, customer, other_customer, pack):
    order = place(customer, pack)
    client.force_login(other_customer)
    assert client.get(f"/account/billing/orders/{order.uuid}/").status_code == 404
    assert order.reference not in client.get("/account/billing/").content.decode()


def test_bank_transfer_waits_for_billing_staff(client, customer, pack, settings):
    settings.BILLING = {**settings.BILLING, "bank_transfer": True}
    client.force_login(customer)
    response = client.post(f"/account/billing/order/{pack.pk}/", {**FORM, "method": "transfer"})
    assert response.status_code == 302 and response["Location"] == "/account/billing/"
    order = Order.objects.get()
    assert order.status == Order.Status.AWAITING_TRANSFER


def test_bank_transfer_is_refused_when_not_offered(client, customer, pack):
    client.force_login(customer)
    client.post(f"/account/billing/order/{pack.pk}/", {**FORM, "method": "transfer"})
    assert not Order.objects.exists()


def test_the_test_gateway_is_closed_when_another_gateway_is_configured(
    client, customer, pack, settings
):
    order = place(customer, pack)
    session = services.start_checkout(order, success_url="http://t/", cancel_url="http://t/")
    settings.BILLING = {**settings.BILLING, "gateway": "stripe"}
    path = session.replace("http://127.0.0.1:8000", "")
    assert client.get(path).status_code == 404
    assert client.post(path, {"outcome": "pay"}).status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.CREATED


def test_the_billing_country_is_chosen_by_name_in_the_buyers_language(client, customer, pack):
    client.force_login(customer)
    english = client.get(f"/account/billing/order/{pack.pk}/").content.decode()
    assert '<option value="BE">Belgium</option>' in english
    customer.language = "fr"
    customer.save()
    french = client.get(f"/account/billing/order/{pack.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content
    assert '<option value="BE">Belgique</option>' in french.decode()


def test_the_service_refuses_a_country_that_is_not_one(customer, pack):
    with pytest.raises(services.OrderRefused, match="country"):
        place(customer, pack, billing_country="XX")
    assert not Order.objects.exists()


@pytest.mark.parametrize(("value", "starts"), [("XX", False), ("be", True), ("", True)])
def test_an_operator_country_that_is_no_country_stops_the_start(value, starts):
    env = {**os.environ, "TIDINGS_OPERATOR_COUNTRY": value}
    run = subprocess.run(
        [sys.executable, "-c", "import tidings.settings as s; print(s.OPERATOR['country'])"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode == 0) is starts, run.stderr
    if starts:
        assert run.stdout.strip() == value.upper()
    else:
        assert "TIDINGS_OPERATOR_COUNTRY must be an ISO 3166-1 two-letter code" in run.stderr
