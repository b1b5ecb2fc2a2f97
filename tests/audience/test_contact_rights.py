"""A contact's rights towards the customer, from the preference page (no login): see and
download all their data, correct it, ask for erasure; the customer's request inbox with
the one-month deadline, erasure in one click, answers mailed, overdue ones escalated."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
import time_machine
from django.utils import timezone

from tests.audience.conftest import path_of
from tests.factories import UserFactory
from tidings.audience import bulk, links, rights, services, setup
from tidings.audience.models import Contact, ContactRequest, SuppressedContact
from tidings.campaigns.models import Campaign
from tidings.core import retention
from tidings.privacy.office import one_month_after
from tidings.sending.models import Delivery, TrackingEvent


@pytest.fixture
def reader(account, newsletter, offers):  # type: ignore[no-untyped-def]
    return services.add_contact(
        account,
        "reader@example.org",
        name="Rea Der",
        attributes={"city": "Ghent", "vip": True},
        tags=["fan"],
        lists=[newsletter, offers],
        proof={"method": "form", "ip_address": "192.0.2.7", "user_agent": "Firefox/140"},
    )


@pytest.fixture
def mailed(account, reader):  # type: ignore[no-untyped-def]
    """A campaign delivered to the reader, who opened it."""
    campaign = Campaign.objects.create(
        account=account, name="Spring news", subject="s", from_email="news@example.org", body="b"
    )
    delivery = Delivery.objects.create(
        campaign=campaign, contact=reader, status=Delivery.Status.SENT, sent_at=timezone.now()
    )
    TrackingEvent.objects.create(campaign=campaign, delivery=delivery, kind="open")
    return campaign


def prefs(contact: Contact) -> str:
    return path_of(links.preference_url(contact))


def ask(client, contact: Contact, kind: str, details: str = "", ip: str = "192.0.2.1"):  # type: ignore[no-untyped-def]
    return client.post(
        prefs(contact), {"action": "request", "kind": kind, "details": details}, REMOTE_ADDR=ip
    )


# --- seeing and downloading -----------------------------------------------------------


def test_the_contact_sees_all_the_data_the_customer_holds(client, reader, mailed):
    path = prefs(reader)
    page = client.get(path).content.decode()
    data_path = f"{path}data/"
    assert data_path in page
    page = client.get(data_path).content.decode()
    for shown in (
        "reader@example.org", "Rea Der", "city", "Ghent", "fan", "Newsletter", "Offers",
        "192.0.2.7", "Firefox/140", "Spring news", "Opens and clicks recorded",
    ):  # fmt: skip
        assert shown in page, shown


def test_the_data_downloads_as_csv_with_every_table(client, reader, mailed):
    response = client.get(f"{prefs(reader)}data/csv/")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["table", "row", "column", "value"]
    found = {(r[0], r[2], r[3]) for r in rows[1:]}
    assert ("Your details", "value", "reader@example.org") in found
    assert ("Attributes", "value", "Ghent") in found
    assert ("Subscriptions", "list", "Offers") in found
    assert ("Proofs of consent", "IP address", "192.0.2.7") in found
    assert ("Mail sent to you", "campaign", "Spring news") in found
    assert ("Opens and clicks recorded", "campaign", "Spring news") in found


def test_the_data_downloads_as_xlsx(client, reader):
    response = client.get(f"{prefs(reader)}data/xlsx/")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert rows[0] == ["table", "row", "column", "value"]
    assert any(r[3] == "reader@example.org" for r in rows[1:])


def test_a_formula_in_the_contacts_data_never_runs_in_the_download(client, account, reader):
    services.update_contact(reader, name="=HYPERLINK(1)")
    response = client.get(f"{prefs(reader)}data/csv/")
    assert "'=HYPERLINK(1)" in response.content.decode("utf-8-sig")  # OWASP's guard
    response = client.get(f"{prefs(reader)}data/xlsx/")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    cells = [c for row in book.worksheets[0].iter_rows() for c in row]
    assert ("=HYPERLINK(1)", "s") in [(c.value, c.data_type) for c in cells]  # text, as is


@pytest.mark.parametrize("suffix", ["data/", "data/csv/", "data/xls/"])
def test_a_changed_or_expired_link_shows_no_data(client, reader, suffix, settings):
    changed = prefs(reader)[:-3] + "xx/"
    assert client.get(changed + suffix).status_code in (400, 404)
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    path = prefs(reader)
    with time_machine.travel(later):
        response = client.get(path + suffix)
    assert response.status_code in (400, 404)
    assert b"reader@example.org" not in response.content


def test_the_contact_corrects_their_name_and_allowed_attributes(client, account, reader):
    setup.set_editable_attributes(account, ["city"])
    client.post(
        prefs(reader),
        {"action": "save", "name": "Rea Der-Smith", "attr:city": "Bruges", "attr:vip": "no"},
    )
    reader.refresh_from_db()
    assert reader.name == "Rea Der-Smith" and reader.attributes == {"city": "Bruges", "vip": True}


# --- asking ---------------------------------------------------------------------------


def test_an_erasure_request_is_received_with_a_one_month_deadline(client, account, reader):
    response = ask(client, reader, "erasure", "Please forget me.")
    assert response.status_code == 200
    req = ContactRequest.objects.get(contact=reader)
    assert (req.account, req.kind, req.status, req.email) == (
        account, "erasure", "open", "reader@example.org"
    )  # fmt: skip
    assert req.due_at == one_month_after(req.received_at)
    assert "must answer by" in response.content.decode()


def test_asking_again_while_open_changes_nothing(client, reader):
    ask(client, reader, "erasure")
    response = ask(client, reader, "erasure", "again!")
    assert "You already asked for this" in response.content.decode()
    assert ContactRequest.objects.filter(contact=reader).count() == 1
    ask(client, reader, "access")
    assert ContactRequest.objects.filter(contact=reader).count() == 2


@pytest.mark.parametrize(
    ("kind", "details", "message"),
    [
        ("", "", "Choose what you are asking for"),
        ("everything", "", "Choose what you are asking for"),
        ("erasure", "x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_bad_request_is_explained_and_nothing_is_stored(client, reader, kind, details, message):
    response = ask(client, reader, kind, details)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ContactRequest.objects.exists()


def test_the_request_form_is_rate_limited(client, account, newsletter, monkeypatch):
    monkeypatch.setattr(rights, "REQUESTS_PER_IP_HOUR", 2)
    people = [services.add_contact(account, f"p{i}@example.org") for i in range(3)]
    assert ask(client, people[0], "access").status_code == 200
    assert ask(client, people[1], "access").status_code == 200
    response = ask(client, people[2], "access")
    assert response.status_code == 429 and "Too many requests" in response.content.decode()
    assert ContactRequest.objects.count() == 2
    # From elsewhere, it goes through.
    assert ask(client, people[2], "access", ip="198.51.100.9").status_code == 200


def test_a_contact_cannot_flood_the_customer(account, reader):
    for _ in range(rights.REQUESTS_PER_CONTACT_DAY):
        req, new = rights.request_from_contact(reader, kind="objection")
        assert new
        rights.answer_request(account, req, answer="Noted.")
    with pytest.raises(rights.TooManyRequests):
        rights.request_from_contact(reader, kind="objection")


# --- the customer's inbox ---------------------------------------------------------------


def test_the_inbox_shows_due_dates_and_highlights_overdue_requests(logged_in, account, reader):
    nav = logged_in.get("/contacts/").content.decode()
    assert 'href="/requests/"' in nav
    old, _ = rights.request_from_contact(reader, kind="access")
    ContactRequest.objects.filter(pk=old.pk).update(due_at=timezone.now() - timedelta(days=1))
    fresh, _ = rights.request_from_contact(reader, kind="erasure")
    page = logged_in.get("/requests/").content.decode()
    assert page.count('class="overdue"') == 1 and "overdue</strong>" in page
    assert f"{fresh.due_at:%-d %b %Y}" in page and "reader@example.org" in page


def test_another_accounts_requests_are_not_seen_nor_answered(
    client, other_customer, account, reader
):
    req, _ = rights.request_from_contact(reader, kind="erasure")
    client.force_login(other_customer)
    assert "reader@example.org" not in client.get("/requests/").content.decode()
    assert client.get(f"/requests/{req.uuid}/").status_code == 404
    response = client.post(f"/requests/{req.uuid}/", {"action": "erase"})
    assert response.status_code == 404
    assert Contact.objects.filter(pk=reader.pk).exists()
    with pytest.raises(rights.RequestError):
        rights.fulfil_erasure(other_customer.account, req)
    assert ContactRequest.objects.get(pk=req.pk).status == "open"


@pytest.mark.promise("P17")
def test_erasure_is_fulfilled_in_one_click_and_the_contact_is_told(
    logged_in, account, reader, mailed, mailbox
):
    req, _ = rights.request_from_contact(reader, kind="erasure")
    access, _ = rights.request_from_contact(reader, kind="access")
    mailbox.clear()  # the receipts and the customer's notices (test_request_receipts)
    response = logged_in.post(f"/requests/{req.uuid}/", {"action": "erase"})
    assert response.status_code == 302
    assert not Contact.objects.filter(email="reader@example.org").exists()
    assert not Delivery.objects.filter(campaign=mailed).exists()
    assert services.is_suppressed(account, "reader@example.org")
    assert SuppressedContact.objects.get(account=account).reason == "erased"
    req.refresh_from_db()
    access.refresh_from_db()
    assert (req.status, req.email, req.contact_id) == ("fulfilled", "", None)
    assert (access.status, access.email) == ("answered", "")
    # Nothing of the address stays in clear in the requests.
    assert not ContactRequest.objects.filter(email__icontains="reader").exists()
    (message,) = mailbox
    assert message.to == ["reader@example.org"] and "has erased" in message.subject
    # The link in older mail now leads nowhere.
    assert logged_in.post(f"/requests/{req.uuid}/", {"action": "erase"}).status_code == 400


@pytest.mark.parametrize("how", ["contact page", "bulk"])
def test_erasing_a_contact_any_other_way_closes_their_requests_and_forgets_the_address(
    logged_in, account, reader, how
):

    erasure, _ = rights.request_from_contact(reader, kind="erasure")
    access, _ = rights.request_from_contact(reader, kind="access")
    if how == "bulk":
        bulk.erase(account, Contact.objects.filter(pk=reader.pk))
    else:
        logged_in.post(f"/contacts/{reader.uuid}/delete/")
    assert not Contact.objects.filter(pk=reader.pk).exists()
    statuses = dict(ContactRequest.objects.values_list("kind", "status"))
    assert statuses == {"erasure": "fulfilled", "access": "answered"}
    assert set(ContactRequest.objects.values_list("email", flat=True)) == {""}
    assert logged_in.get(f"/requests/{erasure.uuid}/").status_code == 200
    assert logged_in.get(f"/requests/{access.uuid}/").status_code == 200


def test_only_an_erasure_request_is_fulfilled_by_erasing(logged_in, reader):
    req, _ = rights.request_from_contact(reader, kind="access")
    response = logged_in.post(f"/requests/{req.uuid}/", {"action": "erase"})
    assert response.status_code == 400
    assert Contact.objects.filter(pk=reader.pk).exists()


def test_an_answer_is_mailed_to_the_contact_and_closes_the_request(logged_in, reader, mailbox):
    req, _ = rights.request_from_contact(reader, kind="rectification", details="My address.")
    mailbox.clear()  # the receipt and the customer's notice (test_request_receipts)
    response = logged_in.post(f"/requests/{req.uuid}/", {"action": "answer", "answer": " "})
    assert response.status_code == 400 and "Write the answer" in response.content.decode()
    assert ContactRequest.objects.get(pk=req.pk).status == "open" and not mailbox
    logged_in.post(f"/requests/{req.uuid}/", {"action": "answer", "answer": "Corrected."})
    req.refresh_from_db()
    assert req.status == "answered" and req.answer == "Corrected." and req.closed_at
    (message,) = mailbox
    assert message.to == ["reader@example.org"] and "Corrected." in message.body
    # Once closed, the contact may ask again.
    assert rights.request_from_contact(reader, kind="rectification")[1]


def test_overdue_requests_escalate_to_the_accounts_users_once_a_day(
    customer, account, reader, other_customer, mailbox
):
    colleague = UserFactory(account=account, email="colleague@example.org")
    req, _ = rights.request_from_contact(reader, kind="erasure")
    mailbox.clear()  # the receipt and the customer's notices (test_request_receipts)
    assert rights.escalate_overdue_requests() == 0  # not due yet
    after_due = req.due_at + timedelta(hours=1)
    assert rights.escalate_overdue_requests(after_due) == 1
    # One message to each of the account's users (the ledger holds one per recipient).
    assert {to for message in mailbox for to in message.to} == {customer.email, colleague.email}
    for message in mailbox:
        assert "overdue" in message.subject and "/requests/" in message.body
    assert rights.escalate_overdue_requests(after_due + timedelta(hours=2)) == 0
    assert rights.escalate_overdue_requests(after_due + timedelta(days=1, hours=1)) == 1
    rights.answer_request(account, req, answer="Done.")
    assert rights.escalate_overdue_requests(after_due + timedelta(days=3)) == 0


@pytest.mark.promise("P12")
def test_closed_requests_are_deleted_when_their_retention_ends(account, reader, settings):

    answered, _ = rights.request_from_contact(reader, kind="access")
    rights.answer_request(account, answered, answer="Here it is.")
    still_open, _ = rights.request_from_contact(reader, kind="objection")
    rule = next(r for r in retention.rules() if r.name == "contacts' requests, closed")
    years = settings.RETENTION["audit_years"]
    assert retention.apply(rule, now=timezone.now() + timedelta(days=365 * years - 1)).count == 0
    assert retention.apply(rule, now=timezone.now() + timedelta(days=365 * years + 1)).count == 1
    assert list(ContactRequest.objects.all()) == [still_open]
