"""Staff changes in the console go through the services: audited and announced (P7, P19, P32)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from tests.factories import UserFactory
from tests.staff.conftest import REASON
from tidings.accounts import services
from tidings.accounts.models import User
from tidings.staff.models import AuditEvent


def user_url(user: User) -> str:
    return f"/staff/admin/accounts/user/{user.pk}/change/"


def form_data(user: User, **changes: object) -> dict[str, object]:
    """What the change form posts when the agent edits only `changes`."""
    data: dict[str, object] = {
        "email": user.email,
        "name": user.name,
        "phone": user.phone,
        "postal_address": user.postal_address,
        "_save": "Save",
    }
    for switch in ("allow_product_updates", "allow_support_followups", "allow_analytics"):
        if getattr(user, switch):
            data[switch] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


@pytest.mark.promise("P7", "P19", "P32")
def test_a_staff_change_goes_through_the_service_audited_and_the_customer_is_told(
    console, staff, customer, mailbox
):
    client = console(staff)
    response = client.post(user_url(customer), form_data(customer, postal_address="1 New Road"))

    assert response.status_code == 302, response.content
    customer.refresh_from_db()
    assert customer.postal_address == "1 New Road"
    event = AuditEvent.objects.get(action=AuditEvent.Action.UPDATE, target_id=str(customer.pk))
    assert (event.actor_id, event.actor_kind, event.actor_role) == (staff.pk, "staff", "support")
    assert event.fields == ["postal_address"]
    assert event.reason == REASON
    assert [m.to for m in mailbox] == [["ada@example.org"]]
    assert "Postal address" in mailbox[0].body


@pytest.mark.promise("P18", "P19")
def test_a_processing_switch_changed_by_staff_is_announced(console, staff, customer, mailbox):
    client = console(staff)
    client.post(user_url(customer), form_data(customer, allow_product_updates=False))

    customer.refresh_from_db()
    assert customer.allow_product_updates is False
    event = AuditEvent.objects.get(action=AuditEvent.Action.UPDATE)
    assert event.fields == ["allow_product_updates"]
    assert len(mailbox) == 1


@pytest.mark.promise("P19")
def test_an_email_change_by_staff_waits_for_the_customer_to_confirm(
    console, staff, customer, mailbox
):
    client = console(staff)
    client.post(user_url(customer), form_data(customer, email="ada@new.example"))

    customer.refresh_from_db()
    assert customer.email == "ada@example.org"
    assert customer.pending_email == "ada@new.example"
    assert sorted(m.to[0] for m in mailbox) == ["ada@example.org", "ada@new.example"]


@pytest.mark.promise("P7")
def test_an_address_already_in_use_is_refused_and_nothing_changes(console, staff, customer):
    UserFactory(email="taken@example.org")
    client = console(staff)
    response = client.post(
        user_url(customer),
        form_data(customer, email="TAKEN@example.org", name="Ada L."),
        follow=True,
    )

    customer.refresh_from_db()
    assert (customer.name, customer.pending_email) == ("Ada Lovelace", "")
    assert b"Another account already uses this email address." in response.content
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.UPDATE).exists()


@pytest.mark.promise("P7")
def test_a_change_the_service_refuses_is_explained_and_nothing_is_saved(
    console, staff, customer, monkeypatch
):

    def refuse(user: User, **values: object) -> None:
        raise services.AccountError("The service said no.")

    monkeypatch.setattr(services, "request_email_change", refuse)
    client = console(staff)
    response = client.post(
        user_url(customer),
        form_data(customer, name="Ada King", email="ada@new.example"),
        follow=True,
    )

    assert b"The service said no." in response.content
    customer.refresh_from_db()
    assert customer.name == "Ada Lovelace"  # the profile change before it was rolled back
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.UPDATE).exists()


@pytest.mark.promise("P7", "P19")
def test_renaming_an_account_goes_through_the_service(console, staff, customer, mailbox):
    client = console(staff)
    url = f"/staff/admin/accounts/account/{customer.account_id}/change/"
    response = client.post(url, {"name": "Analytical Engines Ltd", "_save": "Save"})

    assert response.status_code == 302
    customer.account.refresh_from_db()
    assert customer.account.name == "Analytical Engines Ltd"
    event = AuditEvent.objects.get(action=AuditEvent.Action.UPDATE)
    assert (event.target_type, event.reason) == ("accounts.Account", REASON)
    assert [m.to for m in mailbox] == [["ada@example.org"]]


@pytest.mark.promise("P7")
def test_the_console_writes_no_admin_log_entries(console, staff, customer):
    client = console(staff)
    client.get(user_url(customer))
    client.post(user_url(customer), form_data(customer, name="Ada King"))
    assert AuditEvent.objects.filter(action=AuditEvent.Action.UPDATE).exists()
    assert not LogEntry.objects.exists()


@pytest.mark.promise("P7")
def test_staff_cannot_add_or_delete_customers_in_the_console(console, operator_admin, customer):
    client = console(operator_admin)
    assert client.get("/staff/admin/accounts/user/add/").status_code == 403
    assert client.get(f"/staff/admin/accounts/user/{customer.pk}/delete/").status_code == 403
    assert (
        client.post(f"/staff/admin/accounts/account/{customer.account_id}/delete/").status_code
        == 403
    )
    assert User.objects.filter(pk=customer.pk).exists()


@pytest.mark.promise("P7")
def test_billing_cannot_change_a_customer(console, billing_staff, customer):
    client = console(billing_staff)
    response = client.post(user_url(customer), form_data(customer, name="Someone Else"))
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Ada Lovelace"
