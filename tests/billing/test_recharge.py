"""Automatic recharge (billing.recharge): a customer who paid a pack and asked the
gateway to keep the card turns it on in Billing (the consent kept as shown); spending
that leaves the credits below the threshold queues one recharge, charged off-session by
its idempotency key and fulfilled only by the gateway's signed payment_intent.succeeded;
a declined charge turns it off and mails the users; caps, closed, restricted and dunning
accounts; bad input refused. On the test gateway and the real Stripe adapter against
the fake."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.utils import timezone

from tests.billing import stripe_fake
from tests.billing.conftest import checkout, place
from tests.billing.test_stripe import post, stripe_signature
from tests.billing.test_stripe import stripe as stripe  # the fixture
from tests.locale.pseudo import pseudo_locale, unmarked_in_context, visible_texts
from tidings.accounts import services as accounts
from tidings.accounts.models import Account
from tidings.billing import credits, recharge, services
from tidings.billing.models import (
    AutoRecharge,
    CreditBalance,
    CreditEntry,
    Invoice,
    Offer,
    Order,
    Price,
    Subscription,
    VatTreatment,
)
from tidings.billing.tasks import run_recharge, sweep_recharges
from tidings.celery import app
from tidings.staff.models import AuditEvent

S = Order.Status
SPENT = iter(range(10_000, 20_000))  # campaign ids for the reservations


def available(account: Account) -> int:
    return credits.balance_of(account).available


def spend(account: Account, n: int) -> None:
    """What a campaign's start does to the credits: billing.credits's reservation."""
    credits.reserve_for_campaign(account, next(SPENT), n)


def kept_on_test_gateway(customer: Any, pack: Offer, outcome: str = "pay") -> Order:
    """A pack paid on the test gateway, its card kept for automatic recharges."""
    order = place(customer, pack, save_payment_method=True)
    session = checkout(order)
    services.pay_on_test_gateway(session, outcome)
    order.refresh_from_db()
    assert order.status == S.PAID
    return order


def turn_on(customer: Any, order: Order, pack: Offer, threshold: int = 100) -> AutoRecharge:
    return recharge.turn_on(
        customer.account,
        by=customer,
        payment_order=str(order.uuid),
        offer_id=pack.pk,
        threshold=threshold,
        agreed=True,
    )


def recharges(account: Account) -> list[Order]:
    return list(Order.objects.filter(account=account, recharge=True).order_by("pk"))


def mails_to(mailbox: list[Any], words: str) -> int:
    return sum(1 for m in mailbox if words in m.subject)


# The test gateway ----------------------------------------------------------------------------


@pytest.mark.promise("P4", "P10")
def test_spending_below_the_threshold_recharges_once_paid_by_the_gateways_signed_event(
    customer, pack, mailbox
):
    order = kept_on_test_gateway(customer, pack)
    # Tidings keeps the gateway's ids of the card, nothing else of it.
    assert order.gateway_customer.startswith("test_cus_")
    assert order.gateway_payment_method.startswith("test_pm_")
    setting = turn_on(customer, order, pack, threshold=100)
    account = customer.account
    assert available(account) == 1005 and recharges(account) == []

    spend(account, 900)  # 105 left: not below 100
    assert recharges(account) == []
    spend(account, 10)  # 95 left: below
    (made,) = recharges(account)
    assert made.status == S.PAID and made.gateway_ref.startswith("test_pi_")
    assert made.amount == Decimal("11.98") and made.billing_name == order.billing_name
    assert made.gateway_payment_method == order.gateway_payment_method
    assert available(account) == 1095
    (invoice,) = Invoice.objects.filter(order=made)
    assert invoice.is_issued and invoice.paid_at is not None and invoice.total == made.amount
    assert mails_to(mailbox, f"Order {made.reference}: Paid") == 1
    assert mails_to(mailbox, "Invoice") >= 2  # the first pack's and the recharge's
    spend(account, 10)  # above the threshold again: nothing
    assert len(recharges(account)) == 1
    # The consent, as given: who, when, the words; audited.
    setting.refresh_from_db()
    assert setting.consented_by == customer and "11.98 EUR" in setting.consent_text
    assert "below 100" in setting.consent_text
    assert AuditEvent.objects.filter(reason__startswith="automatic recharge on").count() == 1


def test_an_automations_step_that_spends_below_the_threshold_recharges(customer, pack, mailbox):
    order = kept_on_test_gateway(customer, pack)
    turn_on(customer, order, pack, threshold=100)
    assert credits.spend_for_step(customer.account, 77, 950) == 950
    assert [o.status for o in recharges(customer.account)] == [S.PAID]
    assert available(customer.account) == 1055


def test_the_job_queued_on_spending_waits_for_the_spending_to_commit(
    customer, pack, django_capture_on_commit_callbacks
):
    order = kept_on_test_gateway(customer, pack)
    turn_on(customer, order, pack, threshold=100)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        spend(customer.account, 950)
    assert len(queued) == 1 and recharges(customer.account) == []  # not before the commit
    queued[0]()
    assert len(recharges(customer.account)) == 1


def test_the_card_is_kept_only_when_the_buyer_asks(customer, pack, plan, mailbox):
    order = place(customer, pack)
    services.pay_on_test_gateway(checkout(order), "pay")
    order.refresh_from_db()
    assert order.status == S.PAID and not order.save_payment_method
    assert (order.gateway_customer, order.gateway_payment_method) == ("", "")
    assert recharge.payment_orders(customer.account) == []
    # A plan is no pack: nothing to recharge with.
    assert not place(customer, plan, save_payment_method=True).save_payment_method


@pytest.mark.promise("P4")
def test_a_declined_recharge_turns_it_off_mails_the_users_and_charges_nothing_again(
    client, customer, pack, mailbox
):
    order = kept_on_test_gateway(customer, pack, "pay_keep_declining")
    setting = turn_on(customer, order, pack, threshold=100)
    spend(customer.account, 950)
    (failed,) = recharges(customer.account)
    assert failed.status == S.FAILED
    assert available(customer.account) == 55  # nothing credited
    setting.refresh_from_db()
    assert not setting.enabled and setting.failed_order == failed
    assert setting.turned_off_reason == "card_declined"
    (told,) = [m for m in mailbox if "Automatic recharge declined" in m.subject]
    assert told.to == [customer.email] and "nothing was charged" in told.body
    assert "/account/billing/" in told.body
    assert mails_to(mailbox, f"Order {failed.reference}") == 0  # that mail says it
    # The gateway's failure event comes too: nothing new, nothing told twice.
    assert services.confirm_on_test_gateway(failed, "payment_failed")[0] == 200
    spend(customer.account, 10)  # below the threshold again: it is off
    assert len(recharges(customer.account)) == 1
    assert mails_to(mailbox, "Automatic recharge declined") == 1
    assert AuditEvent.objects.filter(reason__contains="declined (card_declined)").count() == 1
    client.force_login(customer)
    page = client.get("/account/billing/").content.decode()
    assert f"the recharge {failed.reference} was declined" in page


# Limits and the accounts never recharged ------------------------------------------------------


def test_at_most_the_days_and_the_months_recharges(customer, pack, mailbox, settings):
    settings.BILLING = {**settings.BILLING, "recharge_per_day": 2, "recharge_per_month": 3}
    order = kept_on_test_gateway(customer, pack)
    turn_on(customer, order, pack, threshold=1000)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):  # each spend takes the credits below 1000 again
            spend(customer.account, available(customer.account) - 10)
        assert len(recharges(customer.account)) == 2
        assert run_recharge(customer.account_id) == "not recharged: the day's limit is reached"
    with time_machine.travel(start + timedelta(days=1, minutes=1), tick=False):
        spend(customer.account, available(customer.account) - 10)
        assert len(recharges(customer.account)) == 3
    with time_machine.travel(start + timedelta(days=2, minutes=2), tick=False):
        spend(customer.account, available(customer.account) - 10)
        assert len(recharges(customer.account)) == 3  # three in 30 days
    with time_machine.travel(start + timedelta(days=31), tick=False):
        spend(customer.account, available(customer.account) - 10)
        assert len(recharges(customer.account)) == 4
    assert all(o.status == S.PAID for o in recharges(customer.account))


def test_one_recharge_in_flight_at_a_time(customer, pack, stripe_kept, on_commit_runs):
    order, fake = stripe_kept
    turn_on(customer, order, pack, threshold=100)
    spend(customer.account, 950)
    (first,) = recharges(customer.account)
    assert first.status == S.CREATED  # charged; Stripe's word not come yet
    spend(customer.account, 10)
    assert run_recharge(customer.account_id).endswith("is in flight")
    assert len(recharges(customer.account)) == 1 and len(fake.payment_intents) == 1


@pytest.mark.parametrize("why", ["closed", "restricted", "dunning", "refunded"])
def test_closed_restricted_and_dunning_accounts_and_refunded_cards_are_never_recharged(
    customer, pack, plan, mailbox, why
):
    order = kept_on_test_gateway(customer, pack)
    turn_on(customer, order, pack, threshold=100)
    account = customer.account
    if why == "closed":
        Account.objects.filter(pk=account.pk).update(status=Account.Status.CLOSED)
    elif why == "restricted":
        Account.objects.filter(pk=account.pk).update(restricted_at=timezone.now())
    elif why == "refunded":  # the order whose card is charged
        assert services.refund_on_test_gateway(order)[0] == 200
    else:
        Subscription.objects.create(
            account=account, offer=plan, order=place(customer, plan),
            current_period_end=timezone.now(), payment_failed_at=timezone.now(),
            dunning_step=Subscription.DunningStep.TOLD,
        )  # fmt: skip
    account.refresh_from_db()
    spend(account, available(account) - 1)  # below the threshold
    assert recharges(account) == []
    assert run_recharge(account.pk).startswith("not recharged: ")


# Bad input -----------------------------------------------------------------------------------


def test_bad_choices_are_refused_and_change_nothing(customer, other_customer, pack, mailbox):
    order = kept_on_test_gateway(customer, pack)
    setting = turn_on(customer, order, pack, threshold=100)
    plan_offer = Offer.objects.create(
        kind=Offer.Kind.PLAN, name="Plan", period="month", vat_treatment=VatTreatment.EXEMPT
    )
    Price.objects.create(offer=plan_offer, currency="EUR", amount=Decimal("5"))
    dollars = Offer.objects.create(
        kind=Offer.Kind.PACK, name="Dollars", credits=10, vat_treatment=VatTreatment.EXEMPT
    )
    Price.objects.create(offer=dollars, currency="USD", amount=Decimal("5"))
    withdrawn = Offer.objects.create(
        kind=Offer.Kind.PACK, name="Old", credits=10, vat_treatment=VatTreatment.EXEMPT,
        active=False,
    )  # fmt: skip
    Price.objects.create(offer=withdrawn, currency="EUR", amount=Decimal("5"))
    others = kept_on_test_gateway(other_customer, pack)
    unkept = place(customer, pack)  # paid, card not kept
    services.pay_on_test_gateway(checkout(unkept), "pay")
    good = {"payment_order": str(order.uuid), "offer_id": pack.pk, "threshold": 50}
    bad: list[dict[str, Any]] = [
        {"threshold": -1},
        {"threshold": 0},
        {"threshold": "ten"},
        {"threshold": 10_000_001},
        {"offer_id": plan_offer.pk},
        {"offer_id": dollars.pk},  # another currency than the card's order
        {"offer_id": withdrawn.pk},
        {"offer_id": "1 OR 1=1"},
        {"payment_order": str(others.uuid)},  # another account's order
        {"payment_order": str(unkept.uuid)},
        {"payment_order": "not-a-uuid"},
    ]
    audited = AuditEvent.objects.count()
    for change in bad:
        with pytest.raises(recharge.RechargeRefused):
            recharge.turn_on(customer.account, by=customer, agreed=True, **{**good, **change})
    with pytest.raises(recharge.RechargeRefused, match="agreement"):
        recharge.turn_on(customer.account, by=customer, agreed=False, **good)
    # Another tenant cannot use this account's card, nor change its setting.
    with pytest.raises(recharge.RechargeRefused):
        recharge.turn_on(other_customer.account, by=other_customer, agreed=True, **good)
    assert AuditEvent.objects.count() == audited
    assert AutoRecharge.objects.count() == 1
    fresh = AutoRecharge.objects.get()
    assert (fresh.pk, fresh.threshold, fresh.offer_id, fresh.enabled) == (
        setting.pk, 100, pack.pk, True,
    )  # fmt: skip
    assert fresh.consent_text == setting.consent_text


def test_the_billing_page_refuses_bad_input_and_another_tenants_order(
    client, customer, other_customer, pack, mailbox
):
    mine = kept_on_test_gateway(customer, pack)
    client.force_login(other_customer)
    form = {"payment_order": str(mine.uuid), "offer": pack.pk, "threshold": 100, "agreed": "yes"}
    page = client.post("/account/billing/recharge/", form, follow=True).content.decode()
    assert "Select a valid choice" in page
    client.force_login(customer)
    page = client.post(
        "/account/billing/recharge/", {**form, "threshold": -5}, follow=True
    ).content.decode()
    assert "greater than or equal to 1" in page
    assert not AutoRecharge.objects.exists()


# The Billing page ----------------------------------------------------------------------------


@pytest.mark.promise("P4")
def test_the_customer_turns_it_on_agreeing_to_the_words_kept_then_off(
    client, customer, pack, mailbox
):
    order = kept_on_test_gateway(customer, pack)
    client.force_login(customer)
    page = client.get("/account/billing/").content.decode()
    assert "Set up automatic recharge" in page and order.reference in page
    form = {"payment_order": str(order.uuid), "offer": pack.pk, "threshold": 100}
    shown = client.post("/account/billing/recharge/", form)
    assert shown.status_code == 200 and not AutoRecharge.objects.exists()  # not yet agreed
    wording = shown.context["choice"].wording
    assert wording in shown.content.decode().replace("&#x27;", "'")
    client.post("/account/billing/recharge/", {**form, "agreed": "yes"})
    setting = AutoRecharge.objects.get()
    assert setting.enabled and setting.consent_text == wording  # kept as shown
    assert setting.consented_by == customer and setting.consent_language == "en"
    page = client.get("/account/billing/").content.decode()
    assert "On: when the credits fall below 100" in page and "11.98 EUR" in page
    client.post("/account/billing/recharge/", {"turn_off": "1"})
    setting.refresh_from_db()
    assert not setting.enabled and setting.turned_off_reason == "turned off by the customer"
    assert AuditEvent.objects.filter(reason__startswith="automatic recharge off").count() == 1
    spend(customer.account, 950)
    assert recharges(customer.account) == []


def test_the_recharge_pages_are_translated(client, customer, pack, mailbox, settings):
    order = kept_on_test_gateway(customer, pack, "pay_keep_declining")
    client.force_login(customer)
    allowed = {"Tidings", "EUR", "PDF", "INV", pack.name, order.reference, "11.98", "100"}
    allowed |= {str(v) for v in settings.OPERATOR.values() if isinstance(v, str)}
    allowed |= {name for _, name in settings.LANGUAGES}
    form = {"payment_order": str(order.uuid), "offer": pack.pk, "threshold": 100}

    def untranslated(page: str) -> list[str]:
        return [w for text in visible_texts(page) for w in unmarked_in_context(text, allowed)]

    with pseudo_locale():
        lang = {"HTTP_ACCEPT_LANGUAGE": "fr"}
        assert untranslated(client.get("/account/billing/", **lang).content.decode()) == []
        consent = client.post("/account/billing/recharge/", form, **lang).content.decode()
        assert untranslated(consent) == []
        session = checkout(place(customer, pack, save_payment_method=True))
        assert untranslated(client.get(f"/pay/test/{session}/", **lang).content.decode()) == []
    turn_on(customer, order, pack)
    spend(customer.account, 950)  # declined: the Billing page says so
    with pseudo_locale():
        page = client.get("/account/billing/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
        allowed |= {recharges(customer.account)[0].reference}
        assert untranslated(page) == []


# Stripe --------------------------------------------------------------------------------------


def intent_event(intent: dict[str, Any], kind: str, event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": intent},
        }
    ).encode()


@pytest.fixture
def stripe_kept(client, customer, pack, stripe) -> tuple[Order, stripe_fake.FakeStripe]:  # type: ignore[no-untyped-def]
    """A pack paid on Stripe Checkout that kept the card: its session completed, then its
    payment's event naming the payment method, both signed as Stripe signs them."""
    order = place(customer, pack, method="stripe", save_payment_method=True)
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    session = stripe.sessions[order.gateway_ref]
    completed = {**session, "status": "complete", "payment_status": "paid"}
    completed["payment_intent"] = "pi_1"
    body = intent_event(completed, "checkout.session.completed", "evt_session")
    assert post(client, body, stripe_signature(body)).status_code == 200
    intent = {
        "id": "pi_1", "object": "payment_intent", "amount": session["amount_total"],
        "currency": "eur", "customer": session["customer"],
        "payment_method": "pm_card_visa", "metadata": {"tidings_order": str(order.uuid)},
    }  # fmt: skip
    body = intent_event(intent, "payment_intent.succeeded", "evt_first_intent")
    assert post(client, body, stripe_signature(body)).status_code == 200
    order.refresh_from_db()
    return order, stripe


@pytest.mark.promise("P4", "P10")
def test_stripe_keeps_the_card_when_asked_and_only_its_signed_event_pays_the_recharge(
    client, customer, pack, stripe_kept, mailbox
):
    order, fake = stripe_kept
    params = fake.requests[0]["params"]
    assert params["payment_intent_data[setup_future_usage]"] == "off_session"
    assert params["customer_creation"] == "always"
    assert order.gateway_customer.startswith("cus_test_")
    assert order.gateway_payment_method == "pm_card_visa"
    turn_on(customer, order, pack, threshold=100)
    spend(customer.account, 950)
    (made,) = recharges(customer.account)
    (request,) = [r for r in fake.requests if r["path"] == "/v1/payment_intents"]
    assert request["idempotency_key"] == made.idempotency_key
    sent = request["params"]
    assert (sent["off_session"], sent["confirm"]) == ("true", "true")
    assert sent["customer"] == order.gateway_customer and sent["payment_method"] == "pm_card_visa"
    assert sent["amount"] == "1198" and sent["currency"] == "eur"
    assert not any("card[" in name or "number" in name for name in sent)
    # Charged at Stripe, but not paid until Stripe's signed word; the order's page fulfils
    # nothing either.
    made.refresh_from_db()
    assert made.status == S.CREATED and made.gateway_ref.startswith("pi_test_")
    client.force_login(customer)
    assert client.get(f"/account/billing/orders/{made.uuid}/").status_code == 200
    made.refresh_from_db()
    assert made.status == S.CREATED and available(customer.account) == 55
    intent = fake.payment_intents[made.gateway_ref]
    forged = intent_event(intent, "payment_intent.succeeded", "evt_forged")
    assert post(client, forged, stripe_signature(forged, "whsec_forged")).status_code == 400
    other = intent_event({**intent, "amount": 1}, "payment_intent.succeeded", "evt_amount")
    assert post(client, other, stripe_signature(other)).status_code == 400
    # Another payment that names this order is not its payment.
    stray = intent_event({**intent, "id": "pi_other"}, "payment_intent.succeeded", "evt_stray")
    assert post(client, stray, stripe_signature(stray)).status_code == 200
    made.refresh_from_db()
    assert made.status == S.CREATED and available(customer.account) == 55
    body = intent_event(intent, "payment_intent.succeeded", "evt_recharged")
    for _ in range(3):  # delivered again: applied once
        assert post(client, body, stripe_signature(body)).status_code == 200
    made.refresh_from_db()
    assert made.status == S.PAID and available(customer.account) == 1055
    assert CreditEntry.objects.filter(order=made, kind="purchase").count() == 1
    assert Invoice.objects.filter(order=made, kind="invoice").count() == 1


@pytest.mark.parametrize(
    ("method", "code"),
    [("pm_card_chargeDeclined", "card_declined"),
     ("pm_card_authenticationRequired", "authentication_required")],
)  # fmt: skip
def test_a_stripe_decline_or_authentication_turns_it_off_and_mails(
    client, customer, pack, stripe_kept, mailbox, method, code
):
    order, fake = stripe_kept
    Order.objects.filter(pk=order.pk).update(gateway_payment_method=method)
    order.refresh_from_db()
    setting = turn_on(customer, order, pack, threshold=100)
    spend(customer.account, 950)
    (failed,) = recharges(customer.account)
    assert failed.status == S.FAILED
    setting.refresh_from_db()
    assert not setting.enabled and setting.turned_off_reason == code
    (told,) = [m for m in mailbox if "Automatic recharge declined" in m.subject]
    assert ("confirm the payment yourself" in told.body) is (code == "authentication_required")
    # Stripe's failure event then: nothing new.
    (intent,) = fake.payment_intents.values()
    body = intent_event(intent, "payment_intent.payment_failed", "evt_failed")
    assert post(client, body, stripe_signature(body)).status_code == 200
    assert mails_to(mailbox, "Automatic recharge declined") == 1
    assert available(customer.account) == 55


def test_a_recharge_job_run_again_charges_the_same_order_once(
    customer, pack, stripe_kept, on_commit_runs
):
    order, fake = stripe_kept
    turn_on(customer, order, pack, threshold=100)
    spend(customer.account, 950)
    (made,) = recharges(customer.account)
    # The worker died after Stripe charged, before Tidings wrote down the payment.
    Order.objects.filter(pk=made.pk).update(gateway_ref="", payment_ref="")
    run_recharge(customer.account_id)
    assert recharges(customer.account) == [made]
    keys = {r["idempotency_key"] for r in fake.requests if r["path"] == "/v1/payment_intents"}
    assert keys == {made.idempotency_key}
    assert len(fake.payment_intents) == 1  # replayed by its key: one charge
    made.refresh_from_db()
    assert made.gateway_ref in fake.payment_intents


def test_a_recharge_the_gateway_did_not_take_is_charged_by_the_next_run_unless_closed(
    customer, pack, stripe_kept, settings, on_commit_runs
):
    order, fake = stripe_kept
    turn_on(customer, order, pack, threshold=100)
    reachable = settings.BILLING["stripe_api_base"]
    settings.BILLING = {**settings.BILLING, "stripe_api_base": "http://127.0.0.1:9"}  # down
    spend(customer.account, 950)
    (made,) = recharges(customer.account)
    assert made.status == S.CREATED and made.gateway_ref == "" and not fake.payment_intents
    settings.BILLING = {**settings.BILLING, "stripe_api_base": reachable}
    Account.objects.filter(pk=customer.account_id).update(status=Account.Status.CLOSED)
    assert run_recharge(customer.account_id).startswith("not recharged: account closed")
    assert not fake.payment_intents
    Account.objects.filter(pk=customer.account_id).update(status=Account.Status.ACTIVE)
    # No spending comes to queue it again: the periodic sweep charges it, by its key.
    assert sweep_recharges() == 1
    assert sweep_recharges() == 0  # in flight now
    assert recharges(customer.account) == [made] and len(fake.payment_intents) == 1
    made.refresh_from_db()
    assert made.gateway_ref in fake.payment_intents


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_recharges_at_once_make_one_charge(client, customer, pack, stripe_kept):
    order, fake = stripe_kept
    turn_on(customer, order, pack, threshold=100)
    credits.balance_of(customer.account)
    CreditBalance.objects.filter(account=customer.account).update(available=50)  # below
    barrier = threading.Barrier(4)
    done: list[str] = []

    def run() -> None:
        try:
            barrier.wait()
            done.append(services.run_recharge(customer.account_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert len(done) == 4
    (made,) = recharges(customer.account)
    assert len(fake.payment_intents) == 1
    keys = {r["idempotency_key"] for r in fake.requests if r["path"] == "/v1/payment_intents"}
    assert keys == {made.idempotency_key}
    assert sum(1 for d in done if re.search(r"charged, waiting", d)) >= 1


# The data map --------------------------------------------------------------------------------


@pytest.mark.promise("P15", "P17")
def test_my_account_shows_the_consent_and_erasure_leaves_nothing_of_it(
    client, customer, pack, mailbox
):
    order = kept_on_test_gateway(customer, pack)
    setting = turn_on(customer, order, pack)
    client.force_login(customer)
    page = client.get("/account/").content.decode().replace("&#x27;", "'")
    assert setting.consent_text in page
    account_id = customer.account_id
    accounts.close_account(customer.account, by=customer, erase_now=True)
    assert not AutoRecharge.objects.filter(account_id=account_id).exists()
    assert not Order.objects.filter(account_id=account_id).exists()  # the card's ids with it


def test_a_due_recharge_whose_job_was_lost_is_made_by_the_sweep(customer, pack, mailbox):
    order = kept_on_test_gateway(customer, pack)
    turn_on(customer, order, pack, threshold=100)
    credits.balance_of(customer.account)
    CreditBalance.objects.filter(account=customer.account).update(available=50)  # no job ran
    assert sweep_recharges() == 1
    assert [o.status for o in recharges(customer.account)] == [S.PAID]
    assert sweep_recharges() == 0  # above the threshold again
    entry = app.conf.beat_schedule["sweep-recharges"]
    assert entry["task"] == sweep_recharges.name and entry["schedule"] == 600.0
