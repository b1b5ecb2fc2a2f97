"""Disclosures to authorities (P25): the date each was made, about a customer or one of
their contacts; the customer is told, at once or, while a legal prohibition on telling
applies, when it ends (its ground and end recorded, audited, a scheduled task)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from tests.factories import UserFactory
from tidings.accounts.selectors import data_held_on
from tidings.audience import rights
from tidings.audience import services as audience
from tidings.privacy import office
from tidings.privacy.models import Disclosure
from tidings.privacy.tasks import tell_customers_of_ended_withholdings
from tidings.staff.models import AuditEvent

OFFICE = "/staff/privacy-office/"


@pytest.fixture
def reader(customer):  # type: ignore[no-untyped-def]
    return audience.add_contact(customer.account, "reader@example.org", name="Rea Der")


def form(customer, **overrides):  # type: ignore[no-untyped-def]
    return {
        "d-authority": "Ghent public prosecutor",
        "d-legal_ground": "court order 46bis",
        "d-reference": "GH-7",
        "d-disclosed_at": "2026-11-20",
        "d-data_disclosed": "name and email",
        "d-account": customer.account_id,
        **overrides,
    }


def shown_in_my_account(account) -> bool:  # type: ignore[no-untyped-def]
    return any(held.entry.model is Disclosure for held in data_held_on(account))


def _disclosures_shown_to(contact) -> list[list[object]]:  # type: ignore[no-untyped-def]
    sections = {s.title: s for s in rights.contact_data(contact)}
    return sections["Disclosures to authorities"].rows


@pytest.mark.promise("P25")
def test_the_date_it_was_made_is_recorded_and_the_customer_is_told(
    mailbox, console, privacy_officer, customer
):
    response = console(privacy_officer).post(OFFICE, form(customer), follow=True)
    assert "The disclosure is recorded." in response.content.decode()
    disclosure = Disclosure.objects.get()
    assert disclosure.disclosed_at.date() == dt.date(2026, 11, 20)
    assert disclosure.customer_told_at is not None and shown_in_my_account(customer.account)
    (mail,) = mailbox
    assert mail.to == [customer.email] and "20 November 2026" in mail.body
    assert "Ghent public prosecutor" in mail.subject


@pytest.mark.promise("P25")
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d-disclosed_at": ""}, "This field is required."),
        ({"d-disclosed_at": "2999-01-01"}, "not a future date"),
        ({"d-contact": "nobody@example.org"}, "no contact with this address"),
        ({"d-contact": "reader@example.org", "d-account": ""}, "account the contact is in"),
        ({"d-withheld_until": "2999-01-01"}, "both its legal ground and its end"),
        ({"d-withheld_ground": "gag order"}, "both its legal ground and its end"),
        ({"d-withheld_until": "2001-01-01", "d-withheld_ground": "x"}, "end in the future"),
    ],
)
def test_a_wrong_disclosure_is_refused_with_its_reason_and_changes_nothing(
    mailbox, console, privacy_officer, customer, reader, overrides, message
):
    response = console(privacy_officer).post(OFFICE, form(customer, **overrides))
    assert response.status_code == 400 and message in response.content.decode()
    assert not Disclosure.objects.exists() and not mailbox
    assert not AuditEvent.objects.filter(action="export").exists()


@pytest.mark.promise("P25")
def test_a_disclosure_can_concern_a_contact(mailbox, console, privacy_officer, customer, reader):
    console(privacy_officer).post(OFFICE, form(customer, **{"d-contact": "Reader@Example.org"}))
    disclosure = Disclosure.objects.get()
    assert disclosure.contact == reader and disclosure.concerns == "reader@example.org"
    assert "reader@example.org" in mailbox[0].body  # the customer, its controller, is told
    # The contact sees it among the data held on them.
    sections = {s.title: s for s in rights.contact_data(reader)}
    assert sections["Disclosures to authorities"].rows[0][1] == "Ghent public prosecutor"
    # Erasing the contact keeps the record (a legal obligation), not the link.
    audience.erase_contact(reader)
    disclosure.refresh_from_db()
    assert disclosure.contact is None and disclosure.concerns == "reader@example.org"


@pytest.mark.promise("P25")
def test_a_disclosure_is_withheld_while_the_law_forbids_telling_then_told(
    mailbox, console, privacy_officer, customer, reader
):
    colleague = UserFactory(account=customer.account, email="colleague@example.org")
    until = timezone.now() + dt.timedelta(days=90)
    overrides = {
        "d-contact": "reader@example.org",
        "d-withheld_until": f"{until:%Y-%m-%d}",
        "d-withheld_ground": "order of the investigating judge, art. 46bis §2",
    }
    console(privacy_officer).post(OFFICE, form(customer, **overrides))
    disclosure = Disclosure.objects.get()
    assert disclosure.is_withheld and disclosure.withheld_ground.startswith("order of")
    # Nobody outside the office knows: no mail, not in My Account, not in the customer's
    # audit trail, not in the contact's view; the office's audit has it all.
    assert not mailbox and not shown_in_my_account(customer.account)
    assert (
        not AuditEvent.objects.filter(account_id=customer.account_id)
        .filter(target_type="privacy.Disclosure")
        .exists()
    )
    recorded = AuditEvent.objects.get(target_type="privacy.Disclosure", action="export")
    assert "withheld from the customer until" in recorded.reason
    assert not _disclosures_shown_to(reader)
    page = console(privacy_officer).get(OFFICE).content.decode()
    assert "withheld until" in page

    assert tell_customers_of_ended_withholdings() == 0  # not yet
    with time_machine.travel(disclosure.withheld_until + dt.timedelta(minutes=1)):
        assert tell_customers_of_ended_withholdings() == 1
        assert tell_customers_of_ended_withholdings() == 0  # once
    disclosure.refresh_from_db()
    assert disclosure.customer_told_at is not None and shown_in_my_account(customer.account)
    assert {m.to[0] for m in mailbox} == {customer.email, colleague.email}
    assert "We could not tell you before" in mailbox[0].body
    told = AuditEvent.objects.get(target_type="privacy.Disclosure", action="update")
    assert told.account_id == customer.account_id and "ended" in told.reason
    assert _disclosures_shown_to(reader)


def test_the_service_refuses_a_contact_of_another_account(
    privacy_officer, customer, other_customer
):
    stranger = audience.add_contact(other_customer.account, "x@example.org")
    with pytest.raises(office.OfficeError, match="not one of that account's"):
        office.record_disclosure(
            by=privacy_officer,
            authority="Police",
            legal_ground="order",
            data_disclosed="address",
            account=customer.account,
            contact=stranger,
        )
    assert not Disclosure.objects.exists()
