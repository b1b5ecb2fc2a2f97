"""The privacy office: requests with their one-month deadline, disclosures to
authorities (P25), erasures, and the records of processing (art. 30)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from tidings.accounts import services as accounts
from tidings.core import baseurl, datamap
from tidings.core.datamap import plain
from tidings.privacy import office
from tidings.privacy.models import AccountExport, DataRequest, Disclosure
from tidings.privacy.services import erase_account
from tidings.staff.models import AuditEvent

OFFICE = "/staff/privacy-office/"


def test_only_privacy_officers_and_admins_enter(console, staff, privacy_officer):
    assert console(staff).get(OFFICE).status_code == 403
    assert console(privacy_officer).get(OFFICE).status_code == 200


def test_the_office_needs_the_second_factor(client, privacy_officer):
    client.force_login(privacy_officer)  # password only, no OTP device verified
    response = client.get(OFFICE)
    assert response.status_code == 302 and "/staff/admin/login/" in response["Location"]


@pytest.mark.promise("P25")
def test_a_disclosure_is_recorded_with_what_to_whom_and_why_and_audited(
    console, privacy_officer, customer
):
    client = console(privacy_officer)
    response = client.post(
        OFFICE,
        {
            "d-authority": "Ghent public prosecutor",
            "d-legal_ground": "court order under art. 46bis Code of Criminal Procedure",
            "d-reference": "GH-2026-118",
            "d-disclosed_at": "2026-11-20",
            "d-data_disclosed": "the account holder's name and email",
            "d-account": customer.account_id,
        },
    )
    assert response.status_code == 302
    disclosure = Disclosure.objects.get()
    assert disclosure.account_ref == customer.account_id
    assert disclosure.recorded_by == privacy_officer
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert "Ghent public prosecutor" in event.reason
    page = client.get(OFFICE).content.decode()
    assert "GH-2026-118" in page and "art. 46bis" in page


@pytest.mark.promise("P25")
@pytest.mark.parametrize("missing", ["d-authority", "d-legal_ground", "d-data_disclosed"])
def test_a_disclosure_without_its_ground_or_recipient_is_refused(console, privacy_officer, missing):
    data = {
        "d-authority": "Police",
        "d-legal_ground": "order 12",
        "d-disclosed_at": "2026-11-20",
        "d-data_disclosed": "an address",
    }
    data[missing] = ""
    response = console(privacy_officer).post(OFFICE, data)
    assert response.status_code == 400
    assert not Disclosure.objects.exists()


@pytest.mark.promise("P25", "P14")
def test_a_disclosure_outlives_the_erasure_of_the_account_it_concerns(privacy_officer, customer):
    office.record_disclosure(
        by=privacy_officer,
        authority="Tax office",
        legal_ground="tax audit, art. 322 ITC",
        data_disclosed="invoices",
        account=customer.account,
    )
    account_id = customer.account_id
    accounts.close_account(customer.account, by=customer, erase_now=True)
    erase_account(account_id)
    disclosure = Disclosure.objects.get()
    assert disclosure.account is None and disclosure.account_ref == account_id
    assert disclosure.keep_until is not None


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2026, 1, 31, 10, tzinfo=UTC), datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (datetime(2026, 3, 15, 10, tzinfo=UTC), datetime(2026, 4, 15, 10, tzinfo=UTC)),
        (datetime(2026, 12, 20, 10, tzinfo=UTC), datetime(2027, 1, 20, 10, tzinfo=UTC)),
    ],
)
def test_a_request_is_due_one_month_after_it_arrived(privacy_officer, received, due):
    request = office.log_request(
        by=privacy_officer, kind="access", requester="Bob <bob@example.net>", received_at=received
    )
    assert request.due_at == due


def test_overdue_requests_are_shown_and_escalated_once_a_day(
    console, privacy_officer, mailbox, time_machine
):
    time_machine.move_to("2026-03-01 09:00Z", tick=False)
    office.log_request(by=privacy_officer, kind="erasure", requester="Bob <bob@example.net>")
    time_machine.move_to("2026-03-20 09:00Z", tick=False)
    assert office.escalate_due_requests() == 0  # due 1 April: more than a week away
    time_machine.move_to("2026-03-26 09:00Z", tick=False)
    assert office.escalate_due_requests() == 1
    assert office.escalate_due_requests() == 0  # not twice the same day
    time_machine.move_to("2026-04-02 09:00Z", tick=False)
    assert office.escalate_due_requests() == 1
    reminders = [m for m in mailbox if privacy_officer.email in m.to]
    assert len(reminders) == 2 and "OVERDUE" in reminders[-1].body
    assert "OVERDUE" in console(privacy_officer).get(OFFICE).content.decode()


def test_a_refusal_needs_reasons_and_an_answered_request_leaves_the_list(console, privacy_officer):
    request = office.log_request(by=privacy_officer, kind="erasure", requester="Bob")
    client = console(privacy_officer)
    url = f"{OFFICE}requests/{request.pk}/"
    client.post(url, {"status": "refused", "answer": ""})
    request.refresh_from_db()
    assert request.status == DataRequest.Status.OPEN
    client.post(url, {"status": "done", "answer": "Erased on 2 March."})
    request.refresh_from_db()
    assert request.status == DataRequest.Status.DONE and request.keep_until is not None
    assert "Bob" not in client.get(OFFICE).content.decode()


def test_the_records_of_processing_cover_every_purpose_with_every_field(console, privacy_officer):
    activities = office.records_of_processing()
    purposes = {a.purpose for a in activities}
    assert {plain(e.purpose) for e in datamap.entries()} == purposes
    for activity in activities:
        assert all(str(value).strip() for value in vars(activity).values()), activity
    client = console(privacy_officer)
    rows = list(
        csv.reader(io.StringIO(client.get(f"{OFFICE}records.csv").content.decode("utf-8-sig")))
    )
    assert rows[0][:3] == ["purpose", "legal basis", "data subjects"]
    assert len(rows) == len(activities) + 1
    sheet = load_workbook(io.BytesIO(client.get(f"{OFFICE}records.xlsx").content)).active
    assert sheet.max_row == len(activities) + 1


@pytest.mark.promise("P20")
def test_the_office_lists_the_archives_issued_without_personal_data(
    console, privacy_officer, customer
):

    AccountExport.objects.create(account=customer.account, requested_by=customer, format="xlsx")

    page = console(privacy_officer).get(OFFICE).content.decode()

    assert "1 archive asked for in the last 30 days" in page
    assert f"<td>#{customer.account_id}</td><td>XLSX</td>" in page
    assert customer.email not in page


def test_with_no_privacy_officer_the_reminder_goes_to_the_privacy_address(
    privacy_officer, mailbox, time_machine, settings
):
    time_machine.move_to("2026-03-01 09:00Z", tick=False)
    office.log_request(by=privacy_officer, kind="erasure", requester="Bob <bob@example.net>")
    privacy_officer.is_active = False  # left the company: no officer, no admin
    privacy_officer.save()
    settings.OPERATOR = {**settings.OPERATOR, "privacy_email": "dpo@operator.example"}
    time_machine.move_to("2026-04-02 09:00Z", tick=False)
    assert office.escalate_due_requests() == 1
    reminder = next(m for m in mailbox if "dpo@operator.example" in m.to)
    assert baseurl.absolute("/staff/privacy-office/") in reminder.body


def test_with_nobody_to_tell_the_requests_wait_for_the_next_run(
    privacy_officer, mailbox, time_machine, settings
):
    time_machine.move_to("2026-03-01 09:00Z", tick=False)
    request = office.log_request(
        by=privacy_officer, kind="erasure", requester="Bob <bob@example.net>"
    )
    privacy_officer.is_active = False
    privacy_officer.save()
    settings.OPERATOR = {**settings.OPERATOR, "privacy_email": ""}
    time_machine.move_to("2026-04-02 09:00Z", tick=False)
    assert office.escalate_due_requests() == 0
    request.refresh_from_db()
    assert request.escalated_at is None
