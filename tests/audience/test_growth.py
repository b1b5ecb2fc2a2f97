"""The audience's growth per day (audience.growth), kept by triggers on the
subscriptions: a confirmed subscription counts on the day it is confirmed, a confirmed
one unsubscribed counts as left, whatever wrote it (services, a bulk UPDATE, the
import); compacting keeps the sums; installing the triggers fills in the days before
from the subscriptions' dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from tests.transfer.conftest import prepare, run
from tidings.audience import growth, mailing_lists
from tidings.audience import services as audience
from tidings.audience.models import ListGrowth, Subscription

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def totals(account, days: int = 30) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """(subscribed, left) per day, the newest last."""
    return [(row["subscribed"], row["unsubscribed"]) for row in growth.daily(account, days)]


def test_subscribing_and_leaving_count_on_their_day(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    with time_machine.travel(DAY, tick=False):
        ada = audience.add_contact(account, "ada@example.org", lists=[news])
        audience.add_contact(account, "bob@example.org", lists=[news])
    with time_machine.travel(DAY + timedelta(days=2), tick=False):
        audience.unsubscribe(ada)
        series = totals(account, 3)
    assert series == [(2, 0), (0, 0), (0, 1)]


def test_a_double_opt_in_counts_when_it_is_confirmed(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="double")
    with time_machine.travel(DAY, tick=False):
        cleo = audience.add_contact(account, "cleo@example.org")
        audience.subscribe(cleo, news, confirmed=False)
    with time_machine.travel(DAY + timedelta(days=1), tick=False):
        audience.confirm_subscriptions(cleo, [news])
        assert totals(account, 2) == [(0, 0), (1, 0)]


def test_a_bulk_update_and_an_import_are_counted_too(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    rows = "email\n" + "".join(f"guest{i}@example.net\n" for i in range(30))
    run(prepare(customer, rows.encode(), lists=[news]))
    assert totals(account, 1) == [(30, 0)]
    # Raw SQL as much as the ORM: the triggers see every statement.
    ended = Subscription.objects.filter(mailing_list=news, contact__email__lt="guest2").update(
        status=Subscription.Status.UNSUBSCRIBED
    )
    assert ended == 12  # guest0, guest1, guest10 to guest19
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audience_subscription SET status = 'confirmed' WHERE mailing_list_id = %s"
            " AND status = 'unsubscribed'",
            [news.pk],
        )
    # Left without a date of their own: counted on the day the statement ran (today).
    assert totals(account, 1) == [(30 + 12, 12)]


def test_other_accounts_growth_is_not_counted(customer, other_customer):
    news = mailing_lists.save_list(other_customer.account, name="News", optin="single")
    audience.add_contact(other_customer.account, "x@example.org", lists=[news])
    assert totals(customer.account, 1) == [(0, 0)]
    assert totals(other_customer.account, 1) == [(1, 0)]


def test_every_day_is_present_oldest_first(customer):
    series = growth.daily(customer.account, 90)
    assert len(series) == 90 and series[0]["day"] < series[-1]["day"]
    assert series[-1]["day"] == datetime.now(UTC).date()


def test_compacting_keeps_the_sums(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    for i in range(4):
        audience.add_contact(account, f"c{i}@example.org", lists=[news])
    ListGrowth.objects.create(mailing_list=news, day=datetime.now(UTC).date(), unsubscribed=1)
    before = totals(account, 1)
    growth.compact()
    assert totals(account, 1) == before == [(4, 1)]
    assert ListGrowth.objects.filter(mailing_list=news).count() == 1


def test_installing_the_triggers_fills_in_the_days_before(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    with time_machine.travel(DAY, tick=False):
        ada = audience.add_contact(account, "ada@example.org", lists=[news])
    with time_machine.travel(DAY + timedelta(days=1), tick=False):
        audience.unsubscribe(ada)
    # As on a database migrated before the growth existed: no triggers, no rows.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in growth._PG_TRIGGERS:
                cursor.execute(f"DROP TRIGGER {name} ON audience_subscription")
        else:
            for name in growth._SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER {name}")
    ListGrowth.objects.all().delete()
    assert growth.install_triggers() is True
    with time_machine.travel(DAY + timedelta(days=1), tick=False):
        assert totals(account, 2) == [(1, 0), (0, 1)]
    assert growth.install_triggers() is False
