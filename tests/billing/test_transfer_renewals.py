"""A plan bought by bank transfer renews (billing.renewals): at its period's end the
renewal awaits a transfer with its invoice issued unpaid and mailed, billing staff mark
it paid in the console, and until then it follows the dunning of a failed card renewal
(at once, days 3 and 7, suspension on day 14; paying ends it). One renewal per period,
even with two runs at once. Time travel."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection

from tests.billing.conftest import place
from tests.billing.test_staff import billing_staff as billing_staff  # the fixture
from tests.billing.test_staff import console as console  # the fixture
from tests.locale.pseudo import pseudo_locale, unmarked_in_context, visible_texts
from tidings.accounts import services as accounts
from tidings.billing import dunning, renewals, services
from tidings.billing.models import Invoice, Order, Subscription
from tidings.billing.tasks import run_renewals

S = Order.Status
Step = Subscription.DunningStep


@pytest.fixture
def transfer_sub(customer, plan, settings, billing_staff):  # type: ignore[no-untyped-def]
    """A monthly plan bought by bank transfer, marked paid by billing staff."""
    settings.BILLING = {**settings.BILLING, "bank_transfer": True}
    order = place(customer, plan, method="transfer")
    services.mark_transfer_paid(order, by=billing_staff, amount=order.amount, currency="EUR")
    return Subscription.objects.get(order=order)


def subjects(mailbox, words: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for m in mailbox if words in m.subject)


@pytest.mark.promise("P4")
def test_a_transfer_plan_renews_unpaid_is_dunned_and_staff_marking_it_paid_ends_it(
    client, customer, transfer_sub, mailbox, console, billing_staff
):
    end = transfer_sub.current_period_end
    with time_machine.travel(end - timedelta(minutes=5), tick=False):
        assert run_renewals()["renewals opened"] == 0  # not before the period's end
    with time_machine.travel(end + timedelta(minutes=5), tick=False):
        assert run_renewals() == {"renewals opened": 1, "dunning steps": 0}
        assert run_renewals()["renewals opened"] == 0  # once per period
    order = Order.objects.get(renewal_of=transfer_sub)
    assert order.status == S.AWAITING_TRANSFER and order.gateway == "transfer"
    assert order.amount == transfer_sub.order.amount and order.period_end > end
    (invoice,) = Invoice.objects.filter(order=order)
    assert invoice.is_issued and invoice.paid_at is None and invoice.total == order.amount
    # Its invoice mailed, and the dunning's first mail at once, saying "bank transfer".
    assert subjects(mailbox, f"Invoice {invoice.number}") == 1
    (told,) = [m for m in mailbox if "awaits your bank transfer" in m.subject]
    assert order.reference in told.body and "could not be charged" not in told.body
    transfer_sub.refresh_from_db()
    assert transfer_sub.dunning_step == Step.TOLD
    client.force_login(customer)
    page = client.get("/account/billing/").content.decode()
    assert "A payment is due" in page and order.reference in page and "Payment failed" not in page

    failed_at = transfer_sub.payment_failed_at
    for day, step in ((3, Step.REMINDED), (7, Step.REMINDED_AGAIN), (14, Step.SUSPENDED)):
        with time_machine.travel(failed_at + timedelta(days=day, minutes=1), tick=False):
            assert run_renewals() == {"renewals opened": 0, "dunning steps": 1}
        transfer_sub.refresh_from_db()
        assert transfer_sub.dunning_step == step
    assert subjects(mailbox, "Reminder: the renewal") == 2
    assert dunning.suspension(transfer_sub.account) is not None

    # Billing staff mark it paid in the console (the existing flow): it all ends.
    staff_client = console(billing_staff)
    url = f"/staff/admin/billing/order/{order.pk}/transfer-received/"
    staff_client.post(url, {"amount": str(order.amount), "currency": "EUR"})
    order.refresh_from_db()
    transfer_sub.refresh_from_db()
    invoice.refresh_from_db()
    assert order.status == S.PAID and invoice.paid_at is not None
    assert transfer_sub.current_period_end == order.period_end
    assert transfer_sub.payment_failed_at is None and dunning.suspension(customer.account) is None
    # The next period renews at its own end, once.
    with time_machine.travel(transfer_sub.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 1
        assert renewals.renew_due() == 0
    assert Order.objects.filter(renewal_of=transfer_sub).count() == 2


def test_a_transfer_received_during_the_reminders_ends_the_dunning_before_the_suspension(
    transfer_sub, mailbox, billing_staff
):
    with time_machine.travel(transfer_sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = Order.objects.get(renewal_of=transfer_sub)
    transfer_sub.refresh_from_db()
    failed_at = transfer_sub.payment_failed_at
    with time_machine.travel(failed_at + timedelta(days=4), tick=False):
        dunning.advance()
        with pytest.raises(services.OrderRefused):  # not the order's amount: nothing changes
            services.mark_transfer_paid(order, by=billing_staff, amount=1, currency="EUR")
        order.refresh_from_db()
        assert order.status == S.AWAITING_TRANSFER
        services.mark_transfer_paid(
            order, by=billing_staff, amount=order.amount, currency=order.currency
        )
    with time_machine.travel(failed_at + timedelta(days=15), tick=False):
        assert dunning.advance() == 0
    transfer_sub.refresh_from_db()
    assert transfer_sub.sending_suspended_at is None and transfer_sub.dunning_step == Step.NONE
    assert subjects(mailbox, "Sending is suspended") == 0


def test_a_closed_accounts_transfer_plan_is_not_renewed(customer, transfer_sub, mailbox):
    accounts.close_account(customer.account, by=customer)
    with time_machine.travel(transfer_sub.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 0
    assert not Order.objects.filter(renewal_of=transfer_sub).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_renewal_runs_at_once_open_one_transfer_renewal(customer, plan):
    order = Order.objects.create(
        account=customer.account, offer=plan, currency="EUR", amount=29, gateway="transfer",
        idempotency_key="k", status="paid", buyer_kind="person", billing_name="A",
        billing_address="B", billing_country="BE",
    )  # fmt: skip
    end = order.created_at
    sub = Subscription.objects.create(
        account=customer.account, offer=plan, order=order, current_period_end=end
    )
    barrier = threading.Barrier(2)
    opened: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            with time_machine.travel(end + timedelta(minutes=5), tick=False):
                opened.append(renewals.renew_due())
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert errors == []
    assert sorted(opened) == [0, 1]
    assert Order.objects.filter(renewal_of=sub).count() == 1
    assert Invoice.objects.filter(order__renewal_of=sub).count() == 1


def test_the_billing_page_of_a_transfer_renewal_is_translated(
    client, customer, transfer_sub, mailbox, settings
):
    with time_machine.travel(transfer_sub.current_period_end + timedelta(minutes=5), tick=False):
        renewals.renew_due()
    order = Order.objects.get(renewal_of=transfer_sub)
    client.force_login(customer)
    allowed = {"Tidings", "Starter", "EUR", str(order.amount), order.reference, "PDF", "INV"}
    allowed |= {str(v) for v in settings.OPERATOR.values() if isinstance(v, str)}
    allowed |= {name for _, name in settings.LANGUAGES}
    with pseudo_locale():
        page = client.get("/account/billing/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert [w for t in visible_texts(page) for w in unmarked_in_context(t, allowed)] == []
