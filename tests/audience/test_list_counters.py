"""The lists' maintained counters (audience.counters) equal COUNT(*) of the subscriptions
after every way subscriptions are written: a random sequence of operations through the
services, bulk actions, the import, erasures, list deletion and raw SQL, compared with a
fresh count after each step."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count

from tests.factories import UserFactory
from tests.transfer.conftest import prepare, run
from tidings.accounts.models import Account
from tidings.audience import bulk, counters, mailing_lists, segments, selectors
from tidings.audience import services as audience
from tidings.audience.models import Contact, ListCount, MailingList, Subscription

STATUSES = Subscription.Status.values


def true_counts() -> dict[int, dict[str, int]]:
    found = {
        ml: dict.fromkeys(STATUSES, 0) for ml in MailingList.objects.values_list("pk", flat=True)
    }
    rows = (
        Subscription.objects.values_list("mailing_list_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for list_id, status, n in rows:
        found[list_id][status] = n
    return found


def assert_exact(step: str) -> None:
    truth = true_counts()
    assert counters.sizes(truth) == truth, step
    # No counter is left for a list that is gone.
    assert not ListCount.objects.exclude(mailing_list__in=list(truth)).exists(), step


class Operations:
    """Each method changes subscriptions one way; `rng` picks contacts, lists, flags."""

    def __init__(self, rng: random.Random, user, accounts: list[Account]) -> None:  # type: ignore[no-untyped-def]
        self.rng = rng
        self.user = user
        self.accounts = accounts
        self.n = 0

    def _account(self) -> Account:
        return self.rng.choice(self.accounts)

    def _lists(self, account: Account) -> list[MailingList]:
        lists = list(MailingList.objects.filter(account=account).order_by("pk"))
        if len(lists) < 2:
            lists.append(
                mailing_lists.save_list(account, name=f"List {self.rng.random()}", optin="single")
            )
        return lists

    def _contacts(self, account: Account, k: int = 3) -> list[Contact]:
        ids = list(Contact.objects.filter(account=account).values_list("pk", flat=True))
        chosen = self.rng.sample(ids, min(k, len(ids)))
        return list(Contact.objects.filter(pk__in=chosen))

    def _new_email(self) -> str:
        self.n += 1
        return f"person{self.n}@example.net"

    def add_contact(self) -> None:
        account = self._account()
        lists = self.rng.sample(self._lists(account), self.rng.randint(0, 2))
        audience.add_contact(
            account, self._new_email(), lists=lists, confirmed=self.rng.random() < 0.6
        )

    def subscribe(self) -> None:
        account = self._account()
        lists = self._lists(account)
        for contact in self._contacts(account):
            audience.subscribe(
                contact,
                self.rng.choice(lists),
                confirmed=self.rng.random() < 0.5,
                new_consent=self.rng.random() < 0.3,
            )

    def confirm(self) -> None:
        account = self._account()
        for contact in self._contacts(account, 2):
            audience.confirm_subscriptions(contact, self.rng.sample(self._lists(account), 2))

    def unsubscribe(self) -> None:
        account = self._account()
        lists = self._lists(account)
        for contact in self._contacts(account, 2):
            audience.unsubscribe(contact, self.rng.choice([None, *lists]))

    def one_add_remove(self) -> None:
        account = self._account()
        lists = self._lists(account)
        for contact in self._contacts(account, 2):
            if self.rng.random() < 0.5:
                audience.add_to_list(contact, self.rng.choice(lists))
            else:
                audience.remove_from_list(contact, self.rng.choice(lists))

    def bulk_add(self) -> None:
        account = self._account()
        chosen = [c.pk for c in self._contacts(account, 5)]
        bulk.add_to_list(
            Contact.objects.filter(pk__in=chosen), self.rng.choice(self._lists(account))
        )

    def bulk_remove(self) -> None:
        account = self._account()
        chosen = [c.pk for c in self._contacts(account, 5)]
        bulk.remove_from_list(
            Contact.objects.filter(pk__in=chosen), self.rng.choice(self._lists(account))
        )

    def bulk_erase(self) -> None:
        account = self._account()
        chosen = [c.pk for c in self._contacts(account, 3)]
        bulk.erase(account, Contact.objects.filter(pk__in=chosen))

    def erase_one(self) -> None:
        for contact in self._contacts(self._account(), 1):
            audience.erase_contact(contact)

    def delete_contact(self) -> None:
        # Django's collector (cascades), as the retention of unconfirmed signups does.
        for contact in self._contacts(self._account(), 1):
            contact.delete()

    def delete_list(self) -> None:
        account = self._account()
        lists = self._lists(account)
        if len(lists) > 2:
            mailing_lists.delete_list(self.rng.choice(lists))

    def new_list(self) -> None:
        mailing_lists.save_list(self._account(), name=f"List {self.rng.random()}", optin="single")

    def import_file(self) -> None:
        account = self._account()
        if account != self.user.account:
            return
        rows = ["email,name"]
        known = self._contacts(account, 3)
        rows += [f"{c.email},Known" for c in known]
        rows += [f"{self._new_email()},New" for _ in range(self.rng.randint(1, 6))]
        lists = self.rng.sample(self._lists(account), 1)
        job = prepare(self.user, ("\n".join(rows) + "\n").encode(), lists=lists)
        run(job)

    def raw_sql(self) -> None:
        # Whatever writes the table, the database keeps the counters.
        status = self.rng.choice(STATUSES)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audience_subscription SET status = %s WHERE id %% 3 = %s",
                [status, self.rng.randint(0, 2)],
            )

    def rolled_back(self) -> None:
        account = self._account()
        try:
            with transaction.atomic():
                audience.add_contact(account, self._new_email(), lists=self._lists(account))
                raise RuntimeError("undone")
        except RuntimeError:
            pass

    def compact(self) -> None:
        counters.compact()

    def all(self) -> list[Callable[[], None]]:
        return [
            self.add_contact, self.add_contact, self.subscribe, self.confirm, self.unsubscribe,
            self.one_add_remove, self.bulk_add, self.bulk_remove, self.bulk_erase,
            self.erase_one, self.delete_contact, self.delete_list, self.new_list,
            self.import_file, self.raw_sql, self.rolled_back, self.compact,
        ]  # fmt: skip


@pytest.fixture(autouse=True)
def _transfer_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.TRANSFER_DIR = tmp_path / "transfer"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counters_equal_a_count_after_every_write_path(customer, seed):
    other = UserFactory().account
    ops = Operations(random.Random(seed), customer, [customer.account, other])
    for _ in range(8):
        ops.add_contact()
    assert_exact("setup")
    for step in range(60):
        op = ops.rng.choice(ops.all())
        # A refusal (a contact who left is not put back) changes nothing: checked too.
        with contextlib.suppress(audience.AudienceError):
            op()
        assert_exact(f"step {step}: {op.__name__}")
    # Nothing for recount to repair.
    assert counters.recount() == {}


def test_the_size_of_a_whole_list_comes_from_the_counter(customer, django_assert_num_queries):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    for i in range(5):
        audience.add_contact(account, f"r{i}@example.net", lists=[news])
    rules = {"match": "all", "conditions": [{"field": "list", "op": "eq", "value": str(news.uuid)}]}
    assert segments.size(account, rules) == 5 == segments.matching(account, rules).count()
    # The counter says so, not a count of the subscriptions: a counter off by 2 shows.
    ListCount.objects.create(mailing_list=news, status="confirmed", n=2)
    assert segments.size(account, rules) == 7
    assert selectors.list_counts(account)[news.pk]["confirmed"] == 7
    out = StringIO()
    call_command("recount_lists", stdout=out)
    assert f"list {news.pk}: counters were off by confirmed +2; repaired" in out.getvalue()
    assert segments.size(account, rules) == 5
    assert selectors.list_counts(account)[news.pk] == {
        "unconfirmed": 0,
        "confirmed": 5,
        "unsubscribed": 0,
    }


def test_a_restricted_contact_is_not_counted_on_the_list(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    contacts = [audience.add_contact(account, f"r{i}@example.net", lists=[news]) for i in range(3)]
    Contact.objects.filter(pk=contacts[0].pk).update(restricted_at=contacts[0].created_at)
    rules = {"match": "all", "conditions": [{"field": "list", "op": "eq", "value": str(news.uuid)}]}
    assert segments.size(account, rules) == 2 == segments.matching(account, rules).count()


def test_compacting_keeps_the_sums(customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    for i in range(4):
        audience.add_contact(account, f"r{i}@example.net", lists=[news])
    audience.unsubscribe(Contact.objects.get(account=account, email="r0@example.net"), news)
    before = counters.sizes([news.pk])
    counters.compact()
    assert counters.sizes([news.pk]) == before
    assert ListCount.objects.filter(mailing_list=news).count() == 2  # confirmed, unsubscribed
