"""Restriction of processing (GDPR art. 18, P18) as a real state, for a contact and for a
customer: their data is kept and nothing else happens with it (no mail but legal
notices, no segment, no campaign, import or signup), and they are told before it is
lifted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.audience.conftest import path_of
from tests.factories import StaffFactory
from tidings.accounts import services as accounts
from tidings.audience import links, mailability, restriction, rights, segments, services
from tidings.audience.models import ContactRequest
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, recipients, transactional
from tidings.sending import services as sending
from tidings.sending.product_updates import send_product_update

pytestmark = pytest.mark.promise("P18")


@pytest.fixture
def reader(account, newsletter):  # type: ignore[no-untyped-def]
    return services.add_contact(account, "reader@example.org", name="Rea", lists=[newsletter])


@pytest.fixture
def fan(account, newsletter):  # type: ignore[no-untyped-def]
    return services.add_contact(account, "fan@example.org", name="Fan", lists=[newsletter])


@pytest.fixture
def campaign(account, newsletter, customer):  # type: ignore[no-untyped-def]
    sending.set_postal_address(account, "1 Bakery Street, 1000 Brussels", by=customer)
    campaign = Campaign.objects.create(
        account=account, name="News", subject="News", from_email="news@example.org", body="b"
    )
    campaign.lists.add(newsletter)
    return campaign


def to(mailbox, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.subject for m in mailbox if m.to == [address]]


def test_a_restricted_contact_is_kept_and_gets_nothing_but_notices(
    account, newsletter, reader, fan, campaign, mailbox
):
    restriction.restrict(reader, reason="the contact disputes their data")
    assert "restricted" in to(mailbox, reader.email)[0]  # told at once
    # No campaign, no segment, no service mail; the data is still there.
    assert list(recipients.recipients(campaign)) == [fan]
    rules = {
        "match": "all",
        "conditions": [{"field": "list", "op": "eq", "value": str(newsletter.uuid)}],
    }
    assert list(segments.matching(account, rules)) == [fan]
    assert segments.size(account, rules) == 1
    with pytest.raises(transactional.Rejected, match="restricted"):
        transactional.create(account, to=reader.email, subject="s", body="b", from_email="a@b.org")
    lifecycle.start_campaign(campaign)
    assert to(mailbox, reader.email) == [to(mailbox, reader.email)[0]]
    assert to(mailbox, fan.email) == ["News"]
    # An answer to their request is a legal notice: it reaches them.
    request, _ = rights.request_from_contact(reader, kind="access")
    rights.answer_request(account, request, answer="Here is your data.")
    assert len(to(mailbox, reader.email)) == 3  # the restriction, the receipt, the answer


def test_lifting_is_told_first_and_happens_after_the_notice_period(
    account, reader, settings, mailbox, time_machine
):
    settings.RESTRICTION_NOTICE_DAYS = 14
    restriction.restrict(reader, reason="asked")
    reader = restriction.announce_lift(reader)
    assert reader.restriction_lifts_at is not None
    notice = next(m for m in mailbox if "will lift" in m.subject)
    assert reader.restriction_lifts_at.strftime("%-d %B %Y") in notice.subject
    assert not mailability.may_receive(account, reader.email, mailability.Purpose.SERVICE)
    assert restriction.lift_due_restrictions() == 0  # not before the day it was told
    time_machine.move_to(timezone.now() + timedelta(days=14, minutes=1))
    assert restriction.lift_due_restrictions() == 1
    reader.refresh_from_db()
    assert reader.restricted_at is None
    assert mailability.may_receive(account, reader.email, mailability.Purpose.SERVICE)


def test_an_announced_lift_can_be_taken_back(account, reader, time_machine):
    restriction.restrict(reader, reason="asked")
    restriction.keep(restriction.announce_lift(reader))
    time_machine.move_to(timezone.now() + timedelta(days=60))
    assert restriction.lift_due_restrictions() == 0


def test_a_contact_asks_for_restriction_and_the_customer_grants_it_in_one_click(
    client, logged_in, account, reader, mailbox
):
    page = path_of(links.preference_url(reader))
    response = client.post(page, {"action": "request", "kind": "restriction", "details": ""})
    assert response.status_code == 200
    request = ContactRequest.objects.get(kind=ContactRequest.Kind.RESTRICTION)
    detail = logged_in.get(f"/requests/{request.uuid}/")
    assert b"Restrict processing for reader@example.org" in detail.content
    logged_in.post(f"/requests/{request.uuid}/", {"action": "restrict"})
    request.refresh_from_db()
    reader.refresh_from_db()
    assert request.status == "fulfilled" and reader.restricted_at is not None
    assert "the contact asked on" in reader.restriction_reason


def test_the_contact_page_restricts_and_announces_the_lift(logged_in, reader, mailbox):
    page = f"/contacts/{reader.uuid}/"
    logged_in.post(f"{page}restriction/", {"action": "restrict", "reason": " "})
    reader.refresh_from_db()
    assert reader.restricted_at is None  # a reason is required
    logged_in.post(f"{page}restriction/", {"action": "restrict", "reason": "disputed"})
    shown = logged_in.get(page).content.decode()
    assert "Processing restricted since" in shown and "disputed" in shown
    logged_in.post(f"{page}restriction/", {"action": "lift"})
    reader.refresh_from_db()
    assert reader.restriction_lifts_at is not None
    assert "The contact was told it ends on" in logged_in.get(page).content.decode()


def test_another_accounts_contact_cannot_be_restricted(client, other_customer, reader):
    client.force_login(other_customer)
    response = client.post(
        f"/contacts/{reader.uuid}/restriction/", {"action": "restrict", "reason": "x"}
    )
    assert response.status_code == 404
    reader.refresh_from_db()
    assert reader.restricted_at is None


# --- a customer ------------------------------------------------------------------------


def test_a_restricted_account_processes_nothing_but_keeps_and_shows_its_data(
    client, customer, account, reader, campaign, mailbox
):
    client.force_login(customer)
    client.post("/account/restriction/", {"action": "restrict", "reason": "I dispute my data"})
    account.refresh_from_db()
    assert account.restricted_at is not None
    assert any("restricted" in s for s in to(mailbox, customer.email))  # told
    with pytest.raises(lifecycle.SendingError, match="restricted"):
        lifecycle.start_campaign(campaign)
    with pytest.raises(transactional.Rejected, match="restricted"):
        transactional.create(
            account, to="x@example.org", subject="s", body="b", from_email="a@b.org"
        )
    before = len(mailbox)
    send_product_update("What is new", "More.")  # marketing to the customer: not now
    assert len(mailbox) == before
    # Storage and access go on: My Account shows the data, the pages work.
    assert client.get("/account/").status_code == 200
    assert client.get(f"/contacts/{reader.uuid}/").status_code == 200
    # The customer lifts it: at once (they asked), with a confirmation.
    client.post("/account/restriction/", {"action": "lift"})
    account.refresh_from_db()
    assert account.restricted_at is None
    assert any("lifted" in s for s in to(mailbox, customer.email))
    lifecycle.start_campaign(campaign)


def test_the_privacy_office_lifting_a_restriction_tells_the_customer_first(
    customer, account, mailbox, time_machine
):
    officer = StaffFactory(staff_role="privacy_officer")
    accounts.restrict_account(account, by=officer, reason="dispute under review")
    accounts.lift_account_restriction(account, by=officer, reason="review done")
    account.refresh_from_db()
    assert account.restricted_at is not None and account.restriction_lifts_at is not None
    assert any("ends on" in s for s in to(mailbox, customer.email))
    assert accounts.lift_due_account_restrictions() == 0
    time_machine.move_to(account.restriction_lifts_at + timedelta(minutes=1))
    assert accounts.lift_due_account_restrictions() == 1
