"""Leaving at once (P21) without reading every contact every minute: database triggers
(automations.watch) write a `Recheck` row when what the mailability rule reads changes
for a contact active in an automation, and the scheduler's pass checks those contacts
only; every contact is checked hourly, and whenever the account is not open (its own
state is not watched). On PostgreSQL and SQLite (the triggers are each database's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.automations.conftest import welcome_series
from tidings.audience import rights
from tidings.audience import services as audience
from tidings.audience.mailability import contacts_q
from tidings.audience.models import Contact, Subscription, SuppressedContact
from tidings.automations import engine, services, watch
from tidings.automations.models import Automation, Enrolment, Recheck
from tidings.core.mail import Purpose

E = Enrolment.Status


def test_every_table_the_rule_reads_is_watched():
    """A new input of the rule without a trigger would leave its contacts in until the
    hourly sweep: this fails first."""
    sql = str(Contact.objects.filter(contacts_q(Purpose.MARKETING, [1])).query)
    read = set(re.findall(r'"([a-z_]+)"\.', sql)) | set(re.findall(r'FROM "([a-z_]+)"', sql))
    assert read == watch.RULE_READS


@pytest.fixture
def running(account: Any, newsletter: Any, customer: Any) -> tuple[Automation, list[Contact]]:
    """A running automation (a message, a two-day wait, a message) with three contacts
    in it, past the first sweep: from now on only `Recheck` rows are read."""
    flow = services.start(welcome_series(account, newsletter, customer), by=customer)
    people = [
        audience.add_contact(account, f"r{i}@example.net", lists=[newsletter]) for i in range(3)
    ]
    now = timezone.now()
    engine.enter(flow, now)
    assert engine.leave_unmailable(Automation.objects.get(pk=flow.pk), now) == 0  # the sweep
    assert not Recheck.objects.exists()
    return Automation.objects.get(pk=flow.pk), people


def _unsubscribed(contact: Contact, newsletter: Any) -> None:
    audience.unsubscribe(contact)


def _left_the_list(contact: Contact, newsletter: Any) -> None:
    audience.unsubscribe(contact, newsletter)


def _removed_from_the_list(contact: Contact, newsletter: Any) -> None:
    assert audience.remove_from_list(contact, newsletter)


def _objected(contact: Contact, newsletter: Any) -> None:
    rights.request_from_contact(contact, kind="objection", details="no more")


def _restricted(contact: Contact, newsletter: Any) -> None:
    Contact.objects.filter(pk=contact.pk).update(restricted_at=timezone.now())


def _bounced(contact: Contact, newsletter: Any) -> None:
    audience.set_status(contact, Contact.Status.BOUNCED)


def _suppressed(contact: Contact, newsletter: Any) -> None:
    audience.suppress(contact.account, contact.email, SuppressedContact.Reason.COMPLAINED)


def _moved_to_a_suppressed_address(contact: Contact, newsletter: Any) -> None:
    audience.suppress(contact.account, "gone@example.net", SuppressedContact.Reason.ERASED)
    Recheck.objects.all().delete()  # nobody had that address yet
    contact.email = "gone@example.net"  # as the contact's own correction saves it
    contact.save(update_fields=["email"])


CHANGES: list[Callable[[Contact, Any], None]] = [
    _unsubscribed,
    _left_the_list,
    _removed_from_the_list,
    _objected,
    _restricted,
    _bounced,
    _suppressed,
    _moved_to_a_suppressed_address,
]


@pytest.mark.promise("P21")
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
def test_a_change_the_rule_reads_takes_the_contact_out_at_the_next_pass(
    running, newsletter, change
):
    flow, (ada, *others) = running
    change(ada, newsletter)
    assert set(Recheck.objects.values_list("automation_id", "contact_id")) == {(flow.pk, ada.pk)}
    assert engine.leave_unmailable(flow, timezone.now()) == 1
    assert Enrolment.objects.get(contact=ada).status == E.LEFT
    assert {e.status for e in Enrolment.objects.filter(contact__in=others)} == {E.ACTIVE}
    assert not Recheck.objects.exists()


def test_a_change_the_rule_does_not_read_writes_nothing_and_the_pass_reads_no_contact(
    running, newsletter
):
    flow, (ada, bob, _carol) = running
    audience.update_contact(ada, name="Ada L.", attributes={"city": "Paris"})
    Subscription.objects.filter(contact=bob).update(created_at=timezone.now())
    assert not Recheck.objects.exists()
    with CaptureQueriesContext(connection) as queries:
        assert engine.leave_unmailable(flow, timezone.now()) == 0
    assert not [q for q in queries if "audience_contact" in q["sql"]]


@pytest.mark.promise("P21")
def test_every_contact_is_checked_hourly_and_while_the_account_is_not_open(running):
    flow, (ada, _bob, _carol) = running
    # A change no trigger sees (written with the triggers bypassed, as a restore might).
    Recheck.objects.all().delete()
    Enrolment.objects.filter(contact=ada).update(status=E.ACTIVE)
    _unwatched_unsubscribe(ada)
    soon = timezone.now() + timedelta(minutes=30)
    assert engine.leave_unmailable(flow, soon) == 0  # not read before the hourly sweep
    assert engine.leave_unmailable(flow, soon + engine.LEAVE_SWEEP) == 1
    # The account restricted: every contact checked at once, whatever the time.
    flow.account.restricted_at = timezone.now()
    flow.account.save(update_fields=["restricted_at"])
    flow = Automation.objects.get(pk=flow.pk)
    assert engine.leave_unmailable(flow, soon + engine.LEAVE_SWEEP) == 2


def _unwatched_unsubscribe(contact: Contact) -> None:
    """The contact unsubscribed, and the `Recheck` rows the triggers wrote deleted."""
    Contact.objects.filter(pk=contact.pk).update(status=Contact.Status.UNSUBSCRIBED)
    Recheck.objects.all().delete()


@pytest.mark.promise("P21")
def test_a_list_of_a_million_unsubscribed_at_once_is_one_statement_of_rechecks(running, newsletter):
    """Deleting or changing a list's subscriptions in one statement writes the rows in
    one set-based insert on PostgreSQL (statement-level triggers), a row each on SQLite."""
    flow, people = running
    Subscription.objects.filter(mailing_list=newsletter).update(
        status=Subscription.Status.UNSUBSCRIBED
    )
    assert Recheck.objects.count() == 3
    assert engine.leave_unmailable(flow, timezone.now()) == 3
    assert {e.status for e in Enrolment.objects.all()} == {E.LEFT}
    assert len(people) == 3


def test_the_rechecks_are_read_in_chunks(running, newsletter, settings):
    flow, people = running
    settings.AUTOMATIONS_CHUNK = 2
    Subscription.objects.filter(mailing_list=newsletter).delete()
    assert Recheck.objects.count() == 3
    with CaptureQueriesContext(connection) as queries:
        assert engine.leave_unmailable(flow, timezone.now()) == 3
    assert len([q for q in queries if re.search(r"recheck.*LIMIT 2\b", q["sql"])]) == 2
    assert not Recheck.objects.exists() and len(people) == 3


def test_nothing_is_written_for_an_account_that_is_not_open(running, newsletter):
    """A closed account's rows are erased by plain deletes (privacy.services): no
    `Recheck` row may appear meanwhile for a contact being deleted. Its automations'
    contacts are all checked at each pass instead."""
    flow, (ada, *_others) = running
    Account = type(flow.account)
    Account.objects.filter(pk=flow.account_id).update(status=Account.Status.CLOSED)
    audience.unsubscribe(ada)
    Subscription.objects.filter(mailing_list=newsletter).delete()
    assert not Recheck.objects.exists()
    assert engine.leave_unmailable(Automation.objects.get(pk=flow.pk), timezone.now()) == 3
