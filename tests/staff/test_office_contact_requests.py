"""Closing an account never hides its contacts' requests: the privacy office sees the
open ones of closed accounts and answers them (audited) until the erasure, which hands
those still open to the office's own register, where they stay until answered. The
office's forms show their errors and confirm success."""

from __future__ import annotations

import pytest

from tidings.accounts import services as accounts
from tidings.audience import rights
from tidings.audience import services as audience
from tidings.audience.models import Contact, ContactRequest
from tidings.privacy.models import DataRequest
from tidings.privacy.services import erase_account
from tidings.staff.models import AuditEvent

OFFICE = "/staff/privacy-office/"


@pytest.fixture
def reader(customer):  # type: ignore[no-untyped-def]
    return audience.add_contact(customer.account, "reader@example.org", name="Rea Der")


@pytest.fixture
def asked(reader):  # type: ignore[no-untyped-def]
    request, _ = rights.request_from_contact(reader, kind="access", details="What do you hold?")
    return request


def test_an_open_account_s_requests_are_the_customer_s_not_the_office_s(
    console, privacy_officer, asked
):
    page = console(privacy_officer).get(OFFICE).content.decode()
    assert f"/contact-requests/{asked.uuid}/" not in page
    response = console(privacy_officer).get(f"{OFFICE}contact-requests/{asked.uuid}/")
    assert response.status_code == 404


@pytest.mark.promise("P13")
def test_closing_leaves_the_request_visible_and_the_office_answers_it(
    mailbox, console, privacy_officer, customer, asked
):
    accounts.close_account(customer.account, by=customer)
    mailbox.clear()
    client = console(privacy_officer)
    page = client.get(OFFICE).content.decode()
    assert f"/contact-requests/{asked.uuid}/" in page
    assert f"{asked.due_at:%Y-%m-%d}" in page
    url = f"{OFFICE}contact-requests/{asked.uuid}/"
    assert "What do you hold?" in client.get(url).content.decode()

    # An empty answer is refused with its reason, and changes nothing.
    response = client.post(url, {"action": "answer", "answer": "  "})
    assert response.status_code == 400 and "Write the answer" in response.content.decode()
    assert ContactRequest.objects.get(pk=asked.pk).status == "open" and not mailbox

    response = client.post(url, {"action": "answer", "answer": "We hold your name."}, follow=True)
    assert "The answer is mailed; the request is closed." in response.content.decode()
    asked.refresh_from_db()
    assert (asked.status, asked.answer) == ("answered", "We hold your name.")
    (message,) = mailbox
    assert message.to == ["reader@example.org"] and "We hold your name." in message.body
    event = AuditEvent.objects.filter(target_type="audience.ContactRequest", action="update")
    assert event.get().actor_id == privacy_officer.pk
    assert f"/contact-requests/{asked.uuid}/" not in client.get(OFFICE).content.decode()


def test_the_office_fulfils_an_erasure_request_of_a_closed_account(
    console, privacy_officer, customer, reader
):
    request, _ = rights.request_from_contact(reader, kind="erasure")
    accounts.close_account(customer.account, by=customer)
    client = console(privacy_officer)
    client.post(f"{OFFICE}contact-requests/{request.uuid}/", {"action": "erase"})
    assert not Contact.objects.filter(pk=reader.pk).exists()
    assert ContactRequest.objects.get(pk=request.pk).status == "fulfilled"
    assert AuditEvent.objects.filter(action="erase", actor_id=privacy_officer.pk).exists()


@pytest.mark.promise("P13")
def test_erasing_the_account_hands_its_open_requests_to_the_office(
    console, privacy_officer, customer, asked
):
    account_id = customer.account_id
    accounts.close_account(customer.account, by=customer, erase_now=True)
    erase_account(account_id)
    assert not ContactRequest.objects.exists()
    handed = DataRequest.objects.get()
    assert handed.kind == "access" and handed.status == "open"
    assert handed.requester == "reader@example.org"
    assert (handed.received_at, handed.due_at) == (asked.received_at, asked.due_at)
    assert f"#{account_id}" in handed.details and "What do you hold?" in handed.details
    page = console(privacy_officer).get(OFFICE).content.decode()
    assert "reader@example.org" in page
    # A second run of the erasure (a killed job resumed) hands nothing over twice.
    erase_account(account_id)
    assert DataRequest.objects.count() == 1


def test_the_office_forms_show_their_errors_and_confirm_success(console, privacy_officer):
    client = console(privacy_officer)
    response = client.post(OFFICE, {"r-kind": "access", "r-requester": " "})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page and "<details open>" in page
    assert not DataRequest.objects.exists()
    response = client.post(
        OFFICE, {"r-kind": "access", "r-requester": "Jo <jo@example.org>"}, follow=True
    )
    assert "The request is logged: it is due on" in response.content.decode()
    response = client.post(OFFICE, {"d-authority": "Police", "d-legal_ground": ""})
    assert response.status_code == 400 and "<details open>" in response.content.decode()
    response = client.post(
        f"{OFFICE}requests/{DataRequest.objects.get().pk}/",
        {"status": "refused", "answer": ""},
    )
    assert response.status_code == 400 and "needs its reasons" in response.content.decode()
    response = client.post(
        f"{OFFICE}requests/{DataRequest.objects.get().pk}/",
        {"status": "done", "answer": "Sent."},
        follow=True,
    )
    assert "The request is closed." in response.content.decode()
