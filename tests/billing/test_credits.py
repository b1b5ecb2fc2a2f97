"""Credits: a ledger that only grows, a balance the database keeps from going negative,
the free allowance once, reservations that two campaigns cannot share."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Sum

from tests.factories import UserFactory
from tidings.billing import credits
from tidings.billing.models import CreditBalance, CreditEntry


def ledger_sum(account) -> int:  # type: ignore[no-untyped-def]
    return CreditEntry.objects.filter(account=account).aggregate(s=Sum("credits"))["s"] or 0


def test_a_new_account_gets_the_free_allowance_once(customer, settings):
    settings.BILLING = {**settings.BILLING, "free_credits": 250}
    assert credits.balance_of(customer.account).available == 250
    assert credits.balance_of(customer.account).available == 250
    assert CreditEntry.objects.filter(account=customer.account, kind="grant").count() == 1


def test_the_balance_cannot_go_negative_whatever_writes_it(customer):
    credits.balance_of(customer.account)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditBalance.objects.filter(account=customer.account).update(available=-1)


def test_reserving_more_than_the_balance_is_refused_and_changes_nothing(customer):
    credits.balance_of(customer.account)  # 5 credits
    with pytest.raises(credits.NotEnoughCredits):
        credits.reserve_for_campaign(customer.account, 1, 6)
    assert credits.balance_of(customer.account).available == 5
    assert not CreditEntry.objects.filter(kind="reserve").exists()


def test_settling_spends_what_went_and_returns_the_rest_once(customer):
    account = customer.account
    credits.reserve_for_campaign(account, 7, 4)
    assert (credits.balance_of(account).available, credits.balance_of(account).reserved) == (1, 4)
    assert credits.settle_campaign(account, 7, sent=1) == 3
    assert credits.settle_campaign(account, 7, sent=1) == 0  # once
    balance = credits.balance_of(account)
    assert (balance.available, balance.reserved) == (4, 0)
    assert ledger_sum(account) == balance.available
    assert CreditEntry.objects.get(campaign_id=7, kind="spend").messages == 1


def test_each_account_has_its_own_credits(customer, other_customer):
    credits.reserve_for_campaign(customer.account, 1, 5)
    assert credits.balance_of(other_customer.account).available == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reservations_at_once_cannot_spend_the_same_credits():
    account = UserFactory().account
    credits.balance_of(account)  # 5 credits: room for one reservation of 4
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def reserve(campaign_id: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                credits.reserve_for_campaign(account, campaign_id, 4)
            outcomes.append("reserved")
        except credits.NotEnoughCredits:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert sorted(outcomes) == ["refused", "reserved"]
    assert credits.balance_of(account).available == 1
    assert ledger_sum(account) == 1
