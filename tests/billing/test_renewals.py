"""Renewals and dunning (billing.renewals, billing.dunning), on the test gateway and on
Stripe's invoice events: a paid renewal extends the plan by its interval and issues its
invoice once; a failed one mails at once, on days 3 and 7, suspends sending on day 14
(time travel), and a payment at any point ends it; nothing happens twice."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.utils import timezone

from tests.billing.conftest import checkout, place, post_test_webhook, session_event
from tests.billing.test_stripe import post, stripe_signature
from tests.billing.test_stripe import stripe as stripe  # the fixture
from tests.locale.pseudo import pseudo_locale, unmarked_in_context, visible_texts
from tidings.accounts.models import Account
from tidings.billing import credits, dunning, renewals, services
from tidings.billing.gateways import TestGateway, parse_event
from tidings.billing.models import Invoice, Order, Subscription
from tidings.billing.tasks import run_renewals
from tidings.celery import app
from tidings.sending.models import OutboundMail
from tidings.staff.models import AuditEvent

S = Order.Status
Step = Subscription.DunningStep


@pytest.fixture
def sub(client, customer, plan) -> Subscription:  # type: ignore[no-untyped-def]
    """A monthly plan bought on the test gateway and paid by its webhook."""
    order = place(customer, plan)
    checkout(order)
    assert post_test_webhook(client, session_event(order, event_id="evt_buy")).status_code == 200
    return Subscription.objects.get(order=order)


def renewal_of(sub: Subscription) -> Order:
    return Order.objects.get(renewal_of=sub)


def invoice_event(order: Order, kind: str, event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": kind,
            "created": int(time.time()),
            "data": {
                "object": {
                    "object": "invoice",
                    "id": order.gateway_ref,
                    "billing_reason": "subscription_cycle",
                    "amount_due": int(order.amount * 100),
                    "currency": order.currency.lower(),
                }
            },
        }
    ).encode()


def mails_to(mailbox, words: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for m in mailbox if words in m.subject)


# Renewals ------------------------------------------------------------------------------------


@pytest.mark.promise("P4")
def test_a_paid_renewal_extends_the_plan_by_its_interval_and_issues_its_invoice_once(
    client, sub, mailbox
):
    end = sub.current_period_end
    assert renewals.renew_due() == 0  # not due yet
    with time_machine.travel(end + timedelta(minutes=5), tick=False):
        assert run_renewals() == {"renewals opened": 1, "dunning steps": 0}
        assert run_renewals()["renewals opened"] == 0  # once per period
        order = renewal_of(sub)
        assert order.status == S.CREATED and order.gateway_ref.startswith("test_in_")
        assert order.amount == sub.order.amount and order.billing_name == sub.order.billing_name
        body = invoice_event(order, "invoice.paid", "evt_renewal_paid")
        for _ in range(3):  # the gateway delivers it again: nothing twice
            assert post_test_webhook(client, body).status_code == 200
    order.refresh_from_db()
    sub.refresh_from_db()
    assert order.status == S.PAID
    assert sub.current_period_end == renewals.period_after(end, sub.offer)
    assert sub.current_period_end.month == (end.month % 12) + 1  # a month, not 31 days
    (invoice,) = Invoice.objects.filter(order=order)
    assert invoice.is_issued and invoice.paid_at is not None and invoice.total == order.amount
    assert Invoice.objects.filter(account=sub.account, kind="invoice").count() == 2
    assert AuditEvent.objects.filter(reason__startswith="renewed by order").count() == 1
    # The next period renews at its own end, once.
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1
    assert Order.objects.filter(renewal_of=sub).count() == 2


def test_a_renewal_on_the_test_gateway_is_made_to_succeed_or_fail_by_its_page(
    client, customer, sub, mailbox
):
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = renewal_of(sub)
    client.force_login(customer)
    page = client.get(f"/pay/test/{order.gateway_ref}/").content.decode()
    assert "no money moves" in page and "The card is declined (test)" in page
    client.post(f"/pay/test/{order.gateway_ref}/", {"outcome": "fail"})
    order.refresh_from_db()
    assert order.status == S.FAILED
    # Still open: the customer pays the failed renewal there.
    page = client.get(f"/pay/test/{order.gateway_ref}/").content.decode()
    assert "The renewal is paid (test)" in page and "declined" not in page
    client.post(f"/pay/test/{order.gateway_ref}/", {"outcome": "pay"})
    order.refresh_from_db()
    assert order.status == S.PAID
    assert client.get(f"/pay/test/{order.gateway_ref}/").status_code == 302  # closed


def test_a_cancelled_plan_is_not_renewed_and_a_late_renewal_event_does_not_revive_it(
    client, sub, mailbox
):
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = renewal_of(sub)
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.CANCELLED)
    assert post_test_webhook(client, invoice_event(order, "invoice.paid", "e1")).status_code == 200
    order.refresh_from_db()
    sub.refresh_from_db()
    assert order.status == S.CREATED and sub.status == Subscription.Status.CANCELLED
    assert credits.active_plan(sub.account) is None
    with time_machine.travel(sub.current_period_end + timedelta(days=40), tick=False):
        assert renewals.renew_due() == 0


def test_a_closed_accounts_plan_is_not_renewed(sub):
    Account.objects.filter(pk=sub.account_id).update(status=Account.Status.CLOSED)
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 0


def test_the_scheduler_runs_the_renewals_and_the_dunning_every_hour():
    entry = app.conf.beat_schedule["run-renewals"]
    assert entry["task"] == run_renewals.name and entry["schedule"] == 3600.0


def test_a_renewal_paid_for_another_amount_is_refused(client, sub):
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = renewal_of(sub)
    body = json.loads(invoice_event(order, "invoice.paid", "e1"))
    body["data"]["object"]["amount_due"] = 1
    assert post_test_webhook(client, json.dumps(body).encode()).status_code == 400
    order.refresh_from_db()
    assert order.status == S.CREATED


# Dunning -------------------------------------------------------------------------------------


def fail_renewal(client, sub: Subscription) -> Order:  # type: ignore[no-untyped-def]
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
        order = renewal_of(sub)
        body = invoice_event(order, "invoice.payment_failed", "evt_failed")
        assert post_test_webhook(client, body).status_code == 200
        assert post_test_webhook(client, body).status_code == 200  # re-delivered
        # The gateway's next attempt fails too: a new event, nothing new to tell.
        services.renew_on_test_gateway(order, "fail")
    order.refresh_from_db()
    return order


def test_a_failed_renewal_mails_at_once_then_on_days_3_and_7_and_suspends_on_day_14(
    client, customer, sub, mailbox
):
    order = fail_renewal(client, sub)
    assert order.status == S.FAILED
    sub.refresh_from_db()
    failed = sub.payment_failed_at
    assert failed is not None and sub.dunning_step == Step.TOLD
    assert mails_to(mailbox, "could not be charged") == 1  # once, whatever came again
    assert mails_to(mailbox, "Order T-") == 1  # the plan's purchase; no order mail for this
    (told,) = [m for m in mailbox if "could not be charged" in m.subject]
    assert told.to == [customer.email] and "/account/billing/" in told.body
    assert (failed + timedelta(days=14)).date().isoformat() in told.body  # what happens next

    def on_day(days: float) -> int:
        with time_machine.travel(failed + timedelta(days=days), tick=False):
            return dunning.advance()

    assert on_day(2.9) == 0
    assert on_day(3) == 1 and on_day(3.5) == 0  # idempotent
    assert mails_to(mailbox, "Reminder") == 1
    assert on_day(7) == 1 and on_day(8) == 0
    assert mails_to(mailbox, "Reminder") == 2
    assert dunning.suspension(sub.account) is None
    assert on_day(14) == 1 and on_day(20) == 0
    assert mails_to(mailbox, "Sending is suspended") == 1
    assert dunning.suspension(sub.account) == sub
    sub.refresh_from_db()
    assert sub.dunning_step == Step.SUSPENDED and sub.sending_suspended_at is not None
    steps = AuditEvent.objects.filter(reason__startswith="dunning").values_list("reason", flat=True)
    assert list(steps.order_by("pk")) == [
        "dunning: renewal payment failed",
        "dunning: reminded",
        "dunning: reminded_again",
        "dunning: suspended",
    ]
    # Everything else works: the data is kept, the account is open, credits are there.
    assert sub.account.is_processing_allowed and not sub.account.is_restricted

    # Paid on day 15: sending is allowed again at once, the plan runs to its next end.
    with time_machine.travel(failed + timedelta(days=15), tick=False):
        services.renew_on_test_gateway(order, "pay")
        assert dunning.suspension(sub.account) is None
        assert on_day(30) == 0
    sub.refresh_from_db()
    assert sub.payment_failed_at is None and sub.dunning_step == Step.NONE
    assert sub.current_period_end == order.period_end
    assert Invoice.objects.filter(order=order).count() == 1
    assert AuditEvent.objects.filter(reason="dunning ended: renewal paid").count() == 1


def test_a_run_that_comes_late_takes_only_the_latest_step(client, sub, mailbox):
    fail_renewal(client, sub)
    sub.refresh_from_db()
    with time_machine.travel(sub.payment_failed_at + timedelta(days=15), tick=False):
        assert dunning.advance() == 1
    assert mails_to(mailbox, "Reminder") == 0
    assert mails_to(mailbox, "Sending is suspended") == 1


def test_a_payment_during_the_reminders_ends_the_dunning_before_the_suspension(
    client, sub, mailbox
):
    order = fail_renewal(client, sub)
    sub.refresh_from_db()
    failed = sub.payment_failed_at
    with time_machine.travel(failed + timedelta(days=4), tick=False):
        dunning.advance()
        services.renew_on_test_gateway(order, "pay")
    with time_machine.travel(failed + timedelta(days=14), tick=False):
        assert dunning.advance() == 0
    assert dunning.suspension(sub.account) is None
    assert mails_to(mailbox, "Sending is suspended") == 0


def test_a_cancelled_plan_ends_its_dunning(client, sub, mailbox):
    fail_renewal(client, sub)
    Subscription.objects.filter(pk=sub.pk).update(gateway_ref="sub_1")
    cancel = {
        "id": "evt_cancel", "type": "customer.subscription.deleted", "created": int(time.time()),
        "data": {"object": {"object": "subscription", "id": "sub_1", "status": "canceled"}},
    }  # fmt: skip
    assert post_test_webhook(client, json.dumps(cancel).encode()).status_code == 200
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELLED and sub.payment_failed_at is None
    with time_machine.travel(timezone.now() + timedelta(days=20), tick=False):
        assert dunning.advance() == 0
    assert dunning.suspension(sub.account) is None


def test_an_automation_step_waits_while_sending_is_suspended(client, sub, mailbox):
    fail_renewal(client, sub)
    sub.refresh_from_db()
    assert credits.spend_for_step(sub.account, 1, 3) == 3  # on the plan, before day 14
    with time_machine.travel(sub.payment_failed_at + timedelta(days=14), tick=False):
        dunning.advance()
    assert credits.spend_for_step(sub.account, 1, 3) == 0


# My Account → Billing ------------------------------------------------------------------------


def test_billing_shows_the_renewal_date_a_failed_payment_what_comes_next_and_pays_it(
    client, customer, sub, mailbox
):
    client.force_login(customer)
    page = client.get("/account/billing/").content.decode()
    assert f"renews on {sub.current_period_end:%Y-%m-%d}" in page
    order = fail_renewal(client, sub)
    sub.refresh_from_db()
    failed = sub.payment_failed_at
    client.force_login(customer)  # the session's clock went a month ahead and back
    page = client.get("/account/billing/").content.decode()
    assert "A payment failed" in page
    assert f"until {sub.current_period_end:%Y-%m-%d}" in page  # no renewal in the past
    for day in (3, 7, 14):
        assert f"{failed + timedelta(days=day):%Y-%m-%d}" in page
    assert f"Pay {order.amount} EUR" in page
    # The button leads to the gateway's page for the amount due (a POST, then there).
    answer = client.post(f"/account/billing/orders/{order.uuid}/pay/")
    assert answer.status_code == 302
    assert answer["Location"].endswith(f"/pay/test/{order.gateway_ref}/")
    client.post(answer["Location"], {"outcome": "pay"})
    page = client.get("/account/billing/").content.decode()
    assert "A payment failed" not in page
    assert "Starter (renewal)" in page


def test_billing_says_when_sending_is_suspended(client, customer, sub, mailbox):
    fail_renewal(client, sub)
    sub.refresh_from_db()
    with time_machine.travel(sub.payment_failed_at + timedelta(days=14), tick=False):
        dunning.advance()
    client.force_login(customer)
    page = client.get("/account/billing/").content.decode()
    assert "Sending is suspended since" in page and "Your data is kept" in page


# Stripe: the gateway renews, Tidings follows its invoice events ------------------------------


def stripe_invoice(kind: str, event_id: str, *, invoice: str = "in_1", **changes: object) -> bytes:
    obj = {
        "object": "invoice",
        "id": invoice,
        "subscription": "sub_stripe",
        "billing_reason": "subscription_cycle",
        "amount_due": 2900,
        "currency": "eur",
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice}",
        **changes,
    }
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


@pytest.fixture
def stripe_sub(client, customer, plan, stripe):  # type: ignore[no-untyped-def]
    order = place(customer, plan, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    session = stripe.sessions[order.gateway_ref]
    body = json.dumps(
        {
            "id": "evt_checkout",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    **session,
                    "status": "complete",
                    "payment_status": "paid",
                    "subscription": "sub_stripe",
                }
            },
        }
    ).encode()
    assert post(client, body, stripe_signature(body)).status_code == 200
    return Subscription.objects.get(order=order)


def deliver(client, body: bytes) -> int:  # type: ignore[no-untyped-def]
    return post(client, body, stripe_signature(body)).status_code


@pytest.mark.promise("P4")
def test_stripe_renewal_paid_extends_the_plan_once(client, stripe_sub, mailbox):
    end = stripe_sub.current_period_end
    assert stripe_sub.gateway_ref == "sub_stripe"
    # The first period's invoice is the checkout's: no renewal.
    first = stripe_invoice(
        "invoice.paid", "evt_0", invoice="in_0", billing_reason="subscription_create"
    )
    assert deliver(client, first) == 200
    changed = stripe_invoice(
        "invoice.paid", "evt_u", invoice="in_u", billing_reason="subscription_update"
    )
    assert deliver(client, changed) == 200  # a plan changed at Stripe: no renewal either
    assert not Order.objects.filter(renewal_of=stripe_sub).exists()
    body = stripe_invoice("invoice.paid", "evt_1")
    assert [deliver(client, body) for _ in range(3)] == [200, 200, 200]
    order = renewal_of(stripe_sub)
    stripe_sub.refresh_from_db()
    assert order.status == S.PAID and order.gateway == "stripe" and order.gateway_ref == "in_1"
    assert stripe_sub.current_period_end == renewals.period_after(end, stripe_sub.offer)
    assert Invoice.objects.filter(order=order).count() == 1
    # Tidings opens no renewal of its own for a gateway that renews by itself.
    with time_machine.travel(stripe_sub.current_period_end + timedelta(hours=1), tick=False):
        assert renewals.renew_due() == 0


def test_stripe_renewal_failed_then_paid_on_its_invoice_page_ends_the_dunning(
    client, customer, stripe_sub, mailbox
):
    assert deliver(client, stripe_invoice("invoice.payment_failed", "evt_f1")) == 200
    # Stripe's next attempt fails too: a new event, nothing new.
    assert deliver(client, stripe_invoice("invoice.payment_failed", "evt_f2")) == 200
    order = renewal_of(stripe_sub)
    assert order.status == S.FAILED and order.pay_url == "https://invoice.stripe.com/i/in_1"
    assert mails_to(mailbox, "could not be charged") == 1
    client.force_login(customer)
    page = client.get("/account/billing/")
    assert "https://invoice.stripe.com" in page["Content-Security-Policy"]
    answer = client.post(f"/account/billing/orders/{order.uuid}/pay/")
    assert answer["Location"] == "https://invoice.stripe.com/i/in_1"
    assert deliver(client, stripe_invoice("invoice.paid", "evt_p")) == 200
    order.refresh_from_db()
    stripe_sub.refresh_from_db()
    assert order.status == S.PAID and stripe_sub.payment_failed_at is None
    assert Order.objects.filter(renewal_of=stripe_sub).count() == 1


def test_a_stripe_renewal_event_out_of_order_never_revives_a_cancelled_plan(
    client, stripe_sub, mailbox
):
    cancel = {
        "id": "evt_cancel", "type": "customer.subscription.deleted", "created": int(time.time()),
        "data": {"object": {"object": "subscription", "id": "sub_stripe", "status": "canceled"}},
    }  # fmt: skip
    assert deliver(client, json.dumps(cancel).encode()) == 200
    assert deliver(client, stripe_invoice("invoice.paid", "evt_late")) == 200
    stripe_sub.refresh_from_db()
    assert stripe_sub.status == Subscription.Status.CANCELLED
    assert not Order.objects.filter(renewal_of=stripe_sub).exists()
    assert credits.active_plan(stripe_sub.account) is None


def test_test_gateway_events_are_signed_like_the_orders(client, sub):
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = renewal_of(sub)
    body = invoice_event(order, "invoice.paid", "e1")
    assert post_test_webhook(client, body, secret="forged").status_code == 400
    order.refresh_from_db()
    assert order.status == S.CREATED
    assert TestGateway.renews_itself is False


def test_the_billing_and_test_gateway_pages_of_a_renewal_are_translated(
    client, customer, sub, mailbox, settings
):
    order = fail_renewal(client, sub)
    client.force_login(customer)
    allowed = {"Tidings", "Starter", "EUR", str(order.amount), order.reference, "PDF", "INV"}
    allowed |= {str(v) for v in settings.OPERATOR.values() if isinstance(v, str)}
    allowed |= {name for _, name in settings.LANGUAGES}

    def untranslated(path: str) -> list[str]:
        with pseudo_locale():
            page = client.get(path, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
        return [w for text in visible_texts(page) for w in unmarked_in_context(text, allowed)]

    assert untranslated("/account/billing/") == []
    assert untranslated(f"/pay/test/{order.gateway_ref}/") == []
    sub.refresh_from_db()
    with time_machine.travel(sub.payment_failed_at + timedelta(days=14), tick=False):
        dunning.advance()
    assert untranslated("/account/billing/") == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dunning_runs_at_once_mail_the_reminder_once(customer, plan):
    order = Order.objects.create(
        account=customer.account, offer=plan, currency="EUR", amount=29, gateway="test",
        idempotency_key="k", status="paid", buyer_kind="person", billing_name="A",
        billing_address="B", billing_country="BE",
    )  # fmt: skip
    now = timezone.now()
    Subscription.objects.create(
        account=customer.account, offer=plan, order=order, current_period_end=now,
        payment_failed_at=now - timedelta(days=3, minutes=1), dunning_step=Step.TOLD,
    )  # fmt: skip
    barrier = threading.Barrier(2)
    taken: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            taken.append(dunning.advance())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert sorted(taken) == [0, 1]
    assert OutboundMail.objects.filter(subject__startswith="Reminder").count() == 1


def test_a_renewal_copies_the_sale_and_none_of_the_payment():
    copied = set(renewals.copied_fields())
    assert {"account_id", "offer_id", "currency", "amount", "gateway", "billing_name"} <= copied
    assert {"billing_address", "billing_country", "vat_number", "buyer_kind"} <= copied
    assert not copied & {"id", "uuid", "status", "gateway_ref", "payment_ref", "paid_at"}
    assert not copied & {"idempotency_key", "renewal_of_id", "period_end", "pay_url"}


def test_a_stripe_invoice_names_its_subscription_either_way_and_odd_shapes_are_none():
    def parsed(**obj: object) -> str:
        body = json.dumps(
            {"id": "e", "type": "invoice.paid", "created": 1, "data": {"object": obj}}
        ).encode()
        return parse_event(body).subscription_ref

    new_api = {"subscription_details": {"subscription": "sub_new"}}
    assert parsed(object="invoice", subscription="sub_old") == "sub_old"
    assert parsed(object="invoice", parent=new_api) == "sub_new"
    for odd in ("text", ["list"], {"subscription_details": "text"}, None):
        assert parsed(object="invoice", parent=odd) == ""
    assert parsed(object="invoice", subscription={"id": "sub_expanded"}) == ""


def test_renewals_waiting_for_their_outcome_do_not_keep_later_ones_from_opening(
    client, other_customer, plan, sub, monkeypatch
):
    """One run looks at BATCH plans: those opened already, waiting for the customer or
    the gateway, are not among them (found reading the code: they filled every run)."""
    second = place(other_customer, plan)  # another account's plan
    checkout(second)
    assert post_test_webhook(client, session_event(second, event_id="evt_two")).status_code == 200
    later = Subscription.objects.get(order=second)
    monkeypatch.setattr(renewals, "BATCH", 1)
    with time_machine.travel(later.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1  # the first plan's, which waits for its outcome
        assert renewals.renew_due() == 1  # the second's, not kept out by the first
        assert renewals.renew_due() == 0
    assert Order.objects.filter(renewal_of__in=[sub, later]).count() == 2


def test_plans_in_dunning_whose_next_step_is_days_away_do_not_keep_due_ones_waiting(
    client, other_customer, plan, sub, monkeypatch
):
    second = place(other_customer, plan)  # another account's plan
    checkout(second)
    assert post_test_webhook(client, session_event(second, event_id="evt_two")).status_code == 200
    later = Subscription.objects.get(order=second)
    now = timezone.now()
    # The first plan (lower id) failed a day ago: nothing due. The second, four days ago.
    Subscription.objects.filter(pk=sub.pk).update(
        payment_failed_at=now - timedelta(days=1), dunning_step=Step.TOLD
    )
    Subscription.objects.filter(pk=later.pk).update(
        payment_failed_at=now - timedelta(days=4), dunning_step=Step.TOLD
    )
    monkeypatch.setattr(dunning, "BATCH", 1)
    assert dunning.advance(now) == 1
    later.refresh_from_db()
    sub.refresh_from_db()
    assert (later.dunning_step, sub.dunning_step) == (Step.REMINDED, Step.TOLD)
