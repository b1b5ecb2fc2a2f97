"""Notices of a breach go through the one outbound pipeline, once per person and role,
in each person's language: users told of their own data (controller, art. 34) and of
their contacts' data (processor, art. 33(2)), with a notice ready for the contacts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.breaches.test_report import scoped_breach
from tidings.accounts import services as accounts
from tidings.accounts.models import User
from tidings.audience import services as audience
from tidings.breaches import services
from tidings.breaches.models import Notice
from tidings.sending.models import OutboundMail


@pytest.mark.promise("P33", "P34")
def test_each_user_is_told_once_per_role_through_the_pipeline_in_their_language(
    mailbox, privacy_officer, acme, globex, settings
):
    incident = scoped_breach(privacy_officer)
    assert services.send_notices(incident, by=privacy_officer) == 6  # 3 users, 2 roles
    english, french = acme.users
    to_english = [m for m in mailbox if m.to == [english.email]]
    to_french = [m for m in mailbox if m.to == [french.email]]
    assert len(to_english) == 2 and len(to_french) == 2
    assert any("concerns your data" in m.subject for m in to_english)
    assert any("your contacts' data" in m.subject for m in to_english)
    # How to complain and whom to ask (P34): in the notice itself.
    (own,) = [m for m in to_english if "concerns your data" in m.subject]
    assert settings.OPERATOR["privacy_email"] in own.body
    assert settings.OPERATOR["authority_name"] in own.body
    (facts,) = [m for m in to_english if "contacts' data" in m.subject]
    assert "Your contacts affected (approximately): 3" in facts.body
    assert "c0@acme.example.net" not in facts.body
    # Each in the language its reader chose (the French texts come with the translations).
    assert all(m.body.startswith("Hello,") for m in to_english)
    assert all(m.body.startswith("Bonjour") for m in to_french)
    assert OutboundMail.objects.filter(purpose="notice").count() == 6


@pytest.mark.promise("P33")
def test_users_of_a_closed_account_are_told_even_deactivated(mailbox, privacy_officer, acme):
    # A breach notice is a notice (accounts.mailability): everyone, whatever the state
    # of their account; closing it and leaving the team does not undo the breach.
    english, french = acme.users
    accounts.close_account(acme.account, by=english)
    User.objects.filter(pk=french.pk).update(is_active=False)
    closing_mail = len(mailbox)
    incident = scoped_breach(privacy_officer)
    assert incident.scopes.get().customers_affected == 2
    assert services.send_notices(incident, by=privacy_officer) == 4
    assert len([m for m in mailbox[closing_mail:] if m.to == [french.email]]) == 2


@pytest.mark.promise("P34")
def test_the_processor_notice_says_what_the_controller_notice_says_and_whom_to_ask(
    mailbox, privacy_officer, acme, settings
):
    # The customer reports to their own authority from it: the nature, consequences and
    # measures, our privacy contact with their postal address, and how to complain.
    incident = scoped_breach(privacy_officer)
    services.send_notices(incident, by=privacy_officer)
    english = acme.users[0]
    (own,) = [m for m in mailbox if m.to == [english.email] and "your data" in m.subject]
    (facts,) = [m for m in mailbox if m.to == [english.email] and "contacts' data" in m.subject]
    operator = settings.OPERATOR
    for line in (
        f"Nature: {', '.join(incident.natures())}",
        f"Likely consequences: {incident.consequences}",
        f"Measures taken or proposed: {incident.measures}",
        f"Questions: our privacy contact, {operator['privacy_contact_name']}, "
        f"{operator['privacy_email']}, {operator['postal_address']}.",
        f"You may also complain to {operator['authority_name']}: {operator['authority_url']}",
    ):
        assert line in facts.body and line in own.body, line


@pytest.mark.promise("P33")
def test_running_the_notices_again_mails_nobody_twice(mailbox, privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    services.send_notices(incident, by=privacy_officer)
    first = len(mailbox)
    assert services.send_notices(incident, by=privacy_officer) == 0
    assert len(mailbox) == first == Notice.objects.count()


def test_notices_wait_for_a_scope(mailbox, privacy_officer):
    incident = services.record_incident(by=privacy_officer, summary="x", detected_at=timezone.now())
    with pytest.raises(services.BreachError):
        services.send_notices(incident, by=privacy_officer)
    assert not mailbox


def test_an_erased_user_is_counted_but_not_re_identified(mailbox, privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    services.send_notices(incident, by=privacy_officer)
    erased = acme.users[0].pk
    acme.users[0].delete()
    notice = Notice.objects.filter(user_ref=erased).first()
    assert notice is not None and notice.user_id is None


def test_an_account_erased_since_the_scope_is_counted_and_nobody_of_it_is_mailed(
    mailbox, privacy_officer, acme, globex
):
    incident = scoped_breach(privacy_officer)
    globex.account.delete()  # erased between the scope and the notices
    assert services.send_notices(incident, by=privacy_officer) == 4  # Acme's two users
    assert not [m for m in mailbox if m.to[0].startswith("globex")]
    assert incident.scopes.get().customers_affected == 3  # still counted


def test_contacts_data_reached_only_by_address_still_tells_the_customer(
    mailbox, privacy_officer, acme
):
    # The suppression list holds keyed hashes: its rows name no contact to count, yet
    # the customer, their controller, must be told their contacts' data was touched.
    audience.suppress(acme.account, "gone@acme.example.net", "erased")
    incident = scoped_breach(privacy_officer, entries=["audience.SuppressedContact"])
    (row,) = incident.scopes.get().per_account
    assert row["contacts"] == 0 and row["processor"] and row["users"] == 0
    assert services.send_notices(incident, by=privacy_officer) == 2
    assert set(Notice.objects.values_list("role", flat=True)) == {Notice.Role.PROCESSOR}
