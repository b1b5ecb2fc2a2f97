"""Who may be mailed is one rule (audience.mailability) written in three forms: a check
of values in memory, a filter on Contact and SQL for the sending engine's hot path.
Over every combination of the facts the rule looks at, the three give the same answer,
on PostgreSQL and on SQLite; a mutation of one form is caught (P5, P18, P21)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings.accounts.models import Account
from tidings.audience import mailability
from tidings.audience.mailability import ANY_LIST, Facts, Purpose
from tidings.audience.models import (
    Contact,
    ContactRequest,
    MailingList,
    Subscription,
    SuppressedContact,
)
from tidings.core.digests import email_digest

pytestmark = [
    pytest.mark.django_db(databases=["default", "sqlite"]),
    pytest.mark.promise("P5", "P18", "P21"),
]

DATABASES = ["default", "sqlite"]
PURPOSES = list(Purpose)
REASONS = [None, *SuppressedContact.Reason.values]


@dataclass
class Person:
    status: str
    restricted: bool
    objection: str | None  # the status of an objection request, if there is one
    subscriptions: dict[int, str]  # list index -> subscription status
    suppressed: str | None
    suppressed_elsewhere: bool  # the same address on another account's list


@dataclass
class World:
    account_status: str
    account_restricted: bool
    people: list[Person] = field(default_factory=list)


people = st.builds(
    Person,
    status=st.sampled_from(Contact.Status.values),
    restricted=st.booleans(),
    objection=st.sampled_from([None, *ContactRequest.Status.values]),
    subscriptions=st.dictionaries(
        st.sampled_from([0, 1, 2]), st.sampled_from(Subscription.Status.values), max_size=3
    ),
    suppressed=st.sampled_from(REASONS),
    suppressed_elsewhere=st.booleans(),
)
worlds = st.builds(
    World,
    account_status=st.sampled_from(Account.Status.values),
    account_restricted=st.booleans(),
    people=st.lists(people, min_size=1, max_size=4),
)
# The lists a campaign goes to: some of the three, none, or any (a campaign to segments).
list_choices = st.sampled_from([[0], [0, 1], [1, 2], [], ANY_LIST])


def facts_of(world: World, person: Person, lists: Any) -> Facts:
    """The facts, straight from the generated world (not read back from a database)."""
    wanted = {0, 1, 2} if lists == ANY_LIST else set(lists)
    return Facts(
        account_status=world.account_status,
        account_restricted=world.account_restricted,
        contact_status=person.status,
        contact_restricted=person.restricted,
        objected=person.objection == ContactRequest.Status.OPEN,
        subscribed=any(
            s == Subscription.Status.CONFIRMED and i in wanted
            for i, s in person.subscriptions.items()
        ),
        suppressed=person.suppressed,
    )


def build(world: World, db: str) -> tuple[Account, list[int], list[int]]:
    """The world written to `db`: its account, list ids, contact ids (in order)."""
    from django.utils import timezone

    account = Account.objects.using(db).create(
        name="A",
        status=world.account_status,
        restricted_at=timezone.now() if world.account_restricted else None,
    )
    other = Account.objects.using(db).create(name="B")
    lists = [
        MailingList.objects.using(db).create(account=account, name=f"L{i}").pk for i in range(3)
    ]
    ids = []
    for n, person in enumerate(world.people):
        address = f"p{n}@example.org"
        contact = Contact(
            account=account,
            email=address,
            status=person.status,
            restricted_at=timezone.now() if person.restricted else None,
        )
        contact.save(using=db)
        ids.append(contact.pk)
        for index, status in person.subscriptions.items():
            Subscription.objects.using(db).create(
                contact=contact, mailing_list_id=lists[index], status=status
            )
        if person.objection is not None:
            ContactRequest.objects.using(db).create(
                account=account,
                contact=contact,
                kind=ContactRequest.Kind.OBJECTION,
                status=person.objection,
                due_at=timezone.now(),
            )
        if person.suppressed is not None:
            SuppressedContact.objects.using(db).create(
                account=account, digest=email_digest(address), reason=person.suppressed
            )
        if person.suppressed_elsewhere:
            SuppressedContact.objects.using(db).create(
                account=other, digest=email_digest(address), reason="bounced"
            )
    return account, lists, ids


def disagreements(world: World, db: str) -> list[str]:
    """Every (purpose, lists, contact) on which the three forms do not agree."""
    found = []
    with transaction.atomic(using=db):
        account, list_ids, ids = build(world, db)
        for choice in ([0], [0, 1], [1, 2], [], ANY_LIST):
            lists = ANY_LIST if choice == ANY_LIST else [list_ids[i] for i in choice]
            for purpose in PURPOSES:
                by_q = set(
                    Contact.objects.using(db)
                    .filter(mailability.contacts_q(purpose, lists), account=account)
                    .values_list("pk", flat=True)
                )
                condition, params = mailability.sql(purpose, lists)
                with connections[db].cursor() as cursor:
                    cursor.execute(
                        f"SELECT c.id FROM audience_contact c WHERE c.account_id = %s "  # noqa: S608
                        f"AND {condition}",
                        [account.pk, *params],
                    )
                    by_sql = {row[0] for row in cursor.fetchall()}
                by_python = {
                    pk
                    for pk, person in zip(ids, world.people, strict=True)
                    if mailability.allows(purpose, facts_of(world, person, choice))
                }
                if not by_q == by_sql == by_python:
                    found.append(
                        f"{db} {purpose} {choice}: Q {by_q} SQL {by_sql} Python {by_python}"
                    )
        transaction.set_rollback(True, using=db)
    return found


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds)
def test_the_three_forms_of_the_rule_agree_on_both_databases(world):
    for db in DATABASES:
        assert disagreements(world, db) == []


def test_a_mutated_form_is_caught(monkeypatch):
    """The comparison is not blind: an SQL form that forgets the objection disagrees."""
    original = mailability.sql

    def forgetful(purpose: str, lists: Any = None) -> tuple[str, list[Any]]:
        condition, params = original(purpose, lists)
        if purpose != Purpose.MARKETING:
            return condition, params
        cut = "AND NOT EXISTS (SELECT 1 FROM audience_contactrequest"
        at = condition.index(cut)
        end = condition.index(") ", at) + 2
        kind_and_status = 2
        index = condition[:at].count("%s")
        return condition[:at] + condition[end:], params[:index] + params[index + kind_and_status :]

    monkeypatch.setattr(mailability, "sql", forgetful)
    objector = Person(
        status=Contact.Status.ACTIVE,
        restricted=False,
        objection=ContactRequest.Status.OPEN,
        subscriptions={0: Subscription.Status.CONFIRMED},
        suppressed=None,
        suppressed_elsewhere=False,
    )
    world = World(account_status=Account.Status.ACTIVE, account_restricted=False, people=[objector])
    for db in DATABASES:
        assert disagreements(world, db), "the mutation went unnoticed"


def test_the_rule_in_words():
    """A few cases read as a marketer and a regulator would."""
    open_account = {"account_status": Account.Status.ACTIVE}
    subscriber = Facts(**open_account, contact_status="active", subscribed=True)
    assert mailability.allows(Purpose.MARKETING, subscriber)
    unsubscribed = Facts(**open_account, contact_status="unsubscribed", subscribed=True)
    assert not mailability.allows(Purpose.MARKETING, unsubscribed)
    assert mailability.allows(Purpose.SERVICE, unsubscribed)  # a receipt they asked for
    assert mailability.allows(Purpose.NOTICE, unsubscribed)  # an answer to their request
    restricted = Facts(
        **open_account, contact_status="active", subscribed=True, contact_restricted=True
    )
    assert not mailability.allows(Purpose.MARKETING, restricted)
    assert not mailability.allows(Purpose.SERVICE, restricted)
    assert mailability.allows(Purpose.NOTICE, restricted)  # told before a lift (art. 18(3))
    bounced = Facts(**open_account, contact_status="bounced")
    assert not any(mailability.allows(p, bounced) for p in PURPOSES)
    objector = Facts(**open_account, contact_status="active", subscribed=True, objected=True)
    assert not mailability.allows(Purpose.MARKETING, objector)
    closed = Facts(account_status=Account.Status.CLOSED, contact_status="active", subscribed=True)
    assert not mailability.allows(Purpose.MARKETING, closed)
    assert mailability.allows(Purpose.NOTICE, closed)
