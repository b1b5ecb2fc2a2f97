"""Staff reads of personal data: only with the role's permission, a reason and an audit (P7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import UserFactory
from tests.staff.conftest import REASON
from tidings.billing.models import Invoice
from tidings.outbox.models import OutboxMessage
from tidings.privacy.models import ErasureRecord
from tidings.staff.console import LIST_PAGE_SIZE
from tidings.staff.models import AuditEvent

pytestmark = pytest.mark.promise("P7")


def user_url(user) -> str:  # type: ignore[no-untyped-def]
    return f"/staff/admin/accounts/user/{user.pk}/change/"


def test_support_agent_reading_a_customer_writes_a_read_event_with_who_what_which_why(
    console, staff, customer
):
    client = console(staff)
    response = client.get(user_url(customer))

    assert response.status_code == 200
    assert b"+44 20 7946 0018" in response.content
    event = AuditEvent.objects.get(action=AuditEvent.Action.READ)
    assert (event.actor_id, event.actor_kind, event.actor_role) == (staff.pk, "staff", "support")
    assert (event.target_type, event.target_id) == ("accounts.User", str(customer.pk))
    assert event.account_id == customer.account_id
    assert {"email", "name", "phone", "postal_address"} <= set(event.fields)
    assert event.reason == REASON


def test_without_a_stated_reason_staff_are_sent_to_the_reason_form_and_see_nothing(
    console, staff, customer
):
    client = console(staff, reason=None)
    response = client.get(user_url(customer))

    assert response.status_code == 302
    assert response["Location"].startswith("/staff/admin/reason/?next=")
    form = client.get(response["Location"])
    assert b"Why do you need to see" in form.content
    assert b"Ada Lovelace" not in form.content
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.READ).exists()

    client.get("/staff/admin/accounts/user/")
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.LIST).exists()


def test_stating_the_reason_leads_back_to_the_record_asked_for(console, staff, customer):
    client = console(staff, reason=None)
    response = client.post(
        "/staff/admin/reason/", {"reason": "ticket 77", "next": user_url(customer)}
    )
    assert response["Location"] == user_url(customer)
    client.get(user_url(customer))
    assert AuditEvent.objects.get(action=AuditEvent.Action.READ).reason == "ticket 77"


def test_an_empty_reason_is_refused(console, staff):
    client = console(staff, reason=None)
    response = client.post("/staff/admin/reason/", {"reason": "  ", "next": "/staff/admin/"})
    assert response.status_code == 200
    assert b"errorlist" in response.content


def test_an_offsite_next_address_is_not_followed(console, staff):
    client = console(staff, reason=None)
    response = client.post(
        "/staff/admin/reason/", {"reason": "ticket 1", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/staff/admin/"


def test_the_reason_expires_after_audit_reason_minutes(console, staff, customer, settings):
    settings.AUDIT_REASON_MINUTES = 30
    client = console(staff)
    with time_machine.travel(timezone.now() + timedelta(minutes=29)):
        assert client.get(user_url(customer)).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        response = client.get(user_url(customer))
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/admin/reason/")


def test_listing_customers_writes_one_list_event_per_row_shown(console, staff, customer):
    UserFactory.create_batch(2)
    client = console(staff)
    response = client.get("/staff/admin/accounts/user/")

    assert response.status_code == 200
    events = AuditEvent.objects.filter(action=AuditEvent.Action.LIST)
    assert events.count() == 3
    mine = events.get(target_id=str(customer.pk))
    assert mine.account_id == customer.account_id
    assert mine.fields == ["account", "email", "name"]
    assert mine.reason == REASON
    assert mine.actor_id == staff.pk


def test_a_list_page_audits_at_most_one_page_of_rows(console, staff):
    UserFactory.create_batch(LIST_PAGE_SIZE + 5, password="!")  # no hashing: fast
    client = console(staff)
    client.get("/staff/admin/accounts/user/?all=")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LIST).count() == LIST_PAGE_SIZE


def test_staff_members_are_not_listed_among_customers(console, staff, customer):
    response = console(staff).get("/staff/admin/accounts/user/")
    assert list(response.context["cl"].result_list) == [customer]
    assert console(staff).get(user_url(staff)).status_code == 302  # not found: back to the list


def test_billing_sees_a_users_billing_fields_but_not_their_phone(console, billing_staff, customer):
    client = console(billing_staff)
    response = client.get(user_url(customer))

    assert response.status_code == 200
    assert b"ada@example.org" in response.content
    assert b"7946" not in response.content
    event = AuditEvent.objects.get(action=AuditEvent.Action.READ)
    assert "phone" not in event.fields
    assert set(event.fields) == {"email", "name", "postal_address", "account"}
    assert client.post(user_url(customer), {"name": "Changed"}).status_code == 403


def test_billing_reads_invoices_and_support_cannot(console, billing_staff, staff, customer):
    invoice = Invoice.objects.create(
        account=customer.account, number="2026-0001", amount_cents=1200, billing_name="Ada Lovelace"
    )
    url = f"/staff/admin/billing/invoice/{invoice.pk}/change/"
    assert console(billing_staff).get(url).status_code == 200
    assert AuditEvent.objects.get(action=AuditEvent.Action.READ).target_id == str(invoice.pk)

    assert console(staff).get(url).status_code == 403
    assert console(staff).get("/staff/admin/billing/invoice/").status_code == 403


def test_support_cannot_look_at_the_audit_log(console, staff):
    client = console(staff)
    assert client.get("/staff/admin/staff/auditevent/").status_code == 403
    event = AuditEvent.objects.first()
    if event is not None:
        assert client.get(f"/staff/admin/staff/auditevent/{event.pk}/change/").status_code == 403


def test_a_role_without_permission_is_refused_before_being_asked_why(
    console, privacy_officer, customer
):
    client = console(privacy_officer, reason=None)
    assert client.get(user_url(customer)).status_code == 403
    assert client.get("/staff/admin/accounts/user/").status_code == 403


def test_privacy_officer_reads_the_audit_log_and_that_read_is_audited(
    console, privacy_officer, staff, customer
):
    console(staff).get(user_url(customer))  # something to read: a support agent's read
    client = console(privacy_officer, reason="annual access review")

    response = client.get("/staff/admin/staff/auditevent/")
    assert response.status_code == 200
    assert b"ticket 4521" in response.content
    listed = AuditEvent.objects.filter(
        action=AuditEvent.Action.LIST, target_type="staff.AuditEvent"
    )
    assert listed.get().actor_role == "privacy_officer"
    assert listed.get().reason == "annual access review"

    read = AuditEvent.objects.get(actor_id=staff.pk, action=AuditEvent.Action.READ)
    assert client.get(f"/staff/admin/staff/auditevent/{read.pk}/change/").status_code == 200
    mine = AuditEvent.objects.filter(
        actor_id=privacy_officer.pk, action=AuditEvent.Action.READ
    ).get()
    assert mine.target_id == str(read.pk)
    # Filtering the log on one customer puts the read into that customer's trail.
    client.get(f"/staff/admin/staff/auditevent/?account_id={customer.account_id}")
    assert AuditEvent.objects.filter(
        actor_id=privacy_officer.pk, action=AuditEvent.Action.LIST, account_id=customer.account_id
    ).exists()


def test_a_records_history_is_its_audit_trail(
    console, privacy_officer, operator_admin, staff, customer
):
    history = f"/staff/admin/accounts/account/{customer.account_id}/history/"
    response = console(operator_admin).get(history)
    assert response.status_code == 302
    assert response["Location"].startswith(
        "/staff/admin/staff/auditevent/?target_type=accounts.Account"
    )
    assert console(staff).get(history).status_code == 403


def test_outbox_is_for_administrators_and_reading_it_is_audited(console, operator_admin, staff):

    message = OutboxMessage.objects.create(
        from_email="no-reply@example.com",
        recipients="ada@example.org",
        subject="Your details were changed",
        body="Hello Ada,\nyour phone number was changed.",
        raw="...",
    )
    assert console(staff).get("/staff/admin/outbox/outboxmessage/").status_code == 403

    client = console(operator_admin)
    listing = client.get("/staff/admin/outbox/outboxmessage/")
    assert b"Your details were changed" in listing.content
    detail = client.get(f"/staff/admin/outbox/outboxmessage/{message.pk}/change/")
    assert b"your phone number was changed" in detail.content
    actions = set(
        AuditEvent.objects.filter(
            target_type="outbox.OutboxMessage", target_id=str(message.pk)
        ).values_list("action", flat=True)
    )
    assert actions == {AuditEvent.Action.LIST, AuditEvent.Action.READ}
    assert b"Delete" not in detail.content
    assert b'name="_save"' not in detail.content


def test_the_console_index_shows_each_role_only_its_own_pages(console, staff, billing_staff):
    index = console(staff).get("/staff/admin/").content
    assert b"/staff/admin/accounts/user/" in index
    assert b"/staff/admin/staff/auditevent/" not in index
    assert b"/staff/admin/billing/invoice/" not in index
    index = console(billing_staff).get("/staff/admin/").content
    assert b"/staff/admin/billing/invoice/" in index
    assert b"/staff/admin/outbox/" not in index


def test_privacy_officer_reads_erasure_proofs_in_the_erased_customers_trail(
    console, privacy_officer, staff
):

    ErasureRecord.objects.create(account_ref=9001, notice_to="gone@example.org")
    client = console(privacy_officer)
    response = client.get("/staff/admin/privacy/erasurerecord/?q=9001")
    assert response.status_code == 200
    assert b"gone@example.org" not in response.content
    event = AuditEvent.objects.get(action=AuditEvent.Action.LIST)
    assert (event.target_type, event.account_id) == ("privacy.ErasureRecord", 9001)
    assert "notice_to" not in event.fields
    assert client.get("/staff/admin/privacy/erasurerecord/?q=not-a-number").status_code == 200
    assert console(staff).get("/staff/admin/privacy/erasurerecord/").status_code == 403
