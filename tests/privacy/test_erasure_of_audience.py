"""Erasing an account erases its audience: contacts, their lists, forms, segments, proofs
of consent and the suppression list leave no trace in any table (P13, P17, P20)."""

from __future__ import annotations

import pytest

from tests.privacy.test_closing_and_erasure import _search_whole_database
from tidings.accounts import services as accounts
from tidings.audience import mailing_lists, segments, services, setup, signup
from tidings.audience.models import (
    AudienceSettings,
    Contact,
    MailingList,
    Segment,
    SubscriptionForm,
    SuppressedContact,
)


@pytest.mark.promise("P13", "P17")
def test_after_erasure_no_table_holds_the_customers_contacts(customer, other_customer, mailbox):
    account = customer.account
    news = mailing_lists.save_list(account, name="Zebra Gazette", visibility="public")
    form = mailing_lists.save_form(
        account, name="Okapi form", lists=[news], consent_text="Quagga consent words"
    )
    services.add_contact(
        account,
        "reader.one@example.net",
        name="Rhea Reader",
        attributes={"city": "Xylopolis"},
        tags=["narwhal"],
        lists=[news],
    )
    signup.request_signup(
        form,
        email="pending.two@example.net",
        name="Penny Pending",
        lists=[news],
        ip="192.0.2.55",
        user_agent="AardvarkBrowser/1.0",
    )
    services.erase_contact(services.add_contact(account, "gone@example.net"))
    segments.save_segment(account, name="Walrus segment", rules={})
    setup.set_editable_attributes(account, ["city"])
    # Another customer's contact stays.
    theirs = services.add_contact(other_customer.account, "reader.one@example.org")

    accounts.close_account(account, by=customer, erase_now=True)

    needles = [
        "reader.one@example.net",
        "pending.two@example.net",
        "Rhea Reader",
        "Penny Pending",
        "Xylopolis",
        "narwhal",
        "192.0.2.55",
        "AardvarkBrowser",
        "Quagga consent",
        "Zebra Gazette",
        "Okapi form",
        "Walrus segment",
    ]
    found = _search_whole_database(needles, skip_tables={"outbox_outboxmessage"})
    assert not found, found
    assert list(Contact.objects.values_list("pk", flat=True)) == [theirs.pk]
    for model in (MailingList, SubscriptionForm, Segment, AudienceSettings, SuppressedContact):
        assert not model.objects.filter(account_id=account.pk).exists(), model
