"""The audience services every later part (forms, import, sending) builds on."""

from __future__ import annotations

import pytest

from tidings.audience import mailability, services
from tidings.audience.models import ConsentProof, Contact, MailingList, Subscription


@pytest.fixture
def newsletter(customer):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=customer.account, name="Newsletter")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Ada@Example.ORG ", "ada@example.org"),
        ("jörg@bücher.example", "jörg@xn--bcher-kva.example"),
        ("user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example"),
    ],
)
def test_addresses_are_stored_lower_case_with_an_idna_domain(raw, stored):
    assert services.normalise_email(raw) == stored


@pytest.mark.parametrize("raw", ["", "not-an-address", "a@b", "two@@example.org", "x" * 400])
def test_an_invalid_address_is_refused_with_a_reason(raw):
    with pytest.raises(services.InvalidEmail, match="not a valid email address"):
        services.normalise_email(raw)


def test_the_same_address_in_another_case_is_the_same_contact(customer, newsletter):
    first = services.add_contact(customer.account, "Bob@Example.org", lists=[newsletter])
    again = services.add_contact(customer.account, "bob@EXAMPLE.org", lists=[newsletter])
    assert first.pk == again.pk
    assert Contact.objects.filter(account=customer.account).count() == 1


@pytest.mark.promise("P13")
def test_an_erased_contact_is_kept_only_as_a_hash_and_not_added_back_without_consent(
    customer, newsletter
):
    contact = services.add_contact(customer.account, "bob@example.org", lists=[newsletter])
    services.erase_contact(contact)
    assert not Contact.objects.filter(email="bob@example.org").exists()
    assert services.is_suppressed(customer.account, "BOB@example.org")
    with pytest.raises(services.Suppressed):
        services.add_contact(customer.account, "bob@example.org", lists=[newsletter])
    assert not Contact.objects.filter(email="bob@example.org").exists()
    # A fresh, proven consent (a confirmed double opt-in) brings them back.
    back = services.add_contact(
        customer.account, "bob@example.org", lists=[newsletter], new_consent=True
    )
    assert back.status == Contact.Status.ACTIVE
    assert not services.is_suppressed(customer.account, "bob@example.org")


def test_the_suppression_of_one_account_does_not_reach_another(customer, other_customer):
    contact = services.add_contact(customer.account, "bob@example.org")
    services.erase_contact(contact)
    services.add_contact(other_customer.account, "bob@example.org")  # no error


@pytest.mark.promise("P21")
def test_unsubscribing_from_everything_stops_all_mail_at_once(customer, newsletter):
    other = MailingList.objects.create(account=customer.account, name="Offers")
    contact = services.add_contact(customer.account, "bob@example.org", lists=[newsletter, other])
    assert list(mailability.recipients(customer.account, [newsletter.pk])) == [contact]
    services.unsubscribe(contact, newsletter)
    assert not mailability.recipients(customer.account, [newsletter.pk]).exists()
    assert mailability.recipients(customer.account, [other.pk]).exists()
    services.unsubscribe(contact)
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert not mailability.recipients(customer.account, [other.pk]).exists()
    with pytest.raises(services.Suppressed):
        services.add_contact(customer.account, "bob@example.org", lists=[other])


def test_double_opt_in_waits_for_confirmation_and_records_it(customer, newsletter):
    contact = services.add_contact(
        customer.account,
        "bob@example.org",
        lists=[newsletter],
        confirmed=False,
        proof={"method": ConsentProof.Method.FORM, "consent_text": "Yes, send me news"},
    )
    assert not mailability.recipients(customer.account, [newsletter.pk]).exists()
    services.confirm_subscriptions(contact, [newsletter])
    sub = Subscription.objects.get(contact=contact)
    assert sub.status == Subscription.Status.CONFIRMED and sub.confirmed_at is not None
    assert ConsentProof.objects.get(contact=contact).confirmed_at is not None


def test_another_accounts_list_is_refused_and_nothing_is_written(customer, other_customer):
    theirs = MailingList.objects.create(account=other_customer.account, name="Theirs")
    with pytest.raises(services.AudienceError, match="another account"):
        services.add_contact(customer.account, "bob@example.org", lists=[theirs])
    assert not Contact.objects.exists()
