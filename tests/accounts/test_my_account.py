"""My Account: see, change and restrict one's data (P15, P16, P18, P19)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tidings.accounts import services
from tidings.accounts.models import User
from tidings.desk import services as desk
from tidings.desk.attachments import Accepted
from tidings.staff.models import AuditEvent


@pytest.fixture
def logged_in(client, customer):
    client.force_login(customer)
    return client


@pytest.mark.promise("P15")
def test_my_account_shows_every_personal_field_of_the_data_map(logged_in, customer):
    customer.postal_address = "12 Analytical Row, London"
    customer.save()
    page = logged_in.get(reverse("accounts:my_account")).content.decode()
    for value in (
        "Ada Lovelace",
        "ada@example.org",
        "+44 20 7946 0018",
        "12 Analytical Row",
        customer.account.name,
    ):
        assert value in page
    # One section per data map entry with rows: users, account, audit trail...
    held = logged_in.get(reverse("accounts:my_account")).context["held"]
    labels = {h.entry.label for h in held}
    assert {"accounts.User", "accounts.Account"} <= labels
    user_table = next(h for h in held if h.entry.label == "accounts.User")
    assert "Phone" in [c.capitalize() for c in user_table.columns] or "phone" in user_table.columns


@pytest.mark.promise("P15")
def test_my_account_shows_the_collection_records_and_audit_events_about_the_customer(
    client, mailbox
):
    client.post(
        reverse("accounts:register"),
        {
            "organisation": "Acme",
            "name": "Ada",
            "email": "ada@example.org",
            "password": "a long enough passphrase",
        },
    )
    user = User.objects.get()
    services.confirm_email(re.search(r"/confirm/([^/\s]+)/", mailbox[0].body).group(1))
    client.force_login(user)
    held = {h.entry.label: h for h in client.get(reverse("accounts:my_account")).context["held"]}
    assert held["privacy.CollectionRecord"].total == 4
    assert held["staff.AuditEvent"].total >= 2


@pytest.mark.promise("P16", "P19")
def test_changing_details_saves_them_and_mails_what_changed_with_secrets_masked(
    logged_in, customer, mailbox
):
    response = logged_in.post(
        reverse("accounts:edit_profile"),
        {
            "organisation": customer.account.name,
            "name": "Augusta Ada King",
            "email": customer.email,
            "phone": "+44 20 7946 0999",
            "postal_address": "",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Augusta Ada King" and customer.phone == "+44 20 7946 0999"
    assert len(mailbox) == 1
    body = mailbox[0].body
    assert mailbox[0].to == ["ada@example.org"]
    assert "Name: Ada Lovelace -> Augusta Ada King" in body
    assert "Phone: •••18 -> •••99" in body
    assert "7946 0018" not in body and "7946 0999" not in body
    event = AuditEvent.objects.filter(action="update", target_type="accounts.User").last()
    assert event.fields == ["name", "phone"] and event.actor_id == customer.pk


@pytest.mark.promise("P16", "P19")
def test_a_new_email_address_takes_effect_only_once_confirmed(logged_in, customer, mailbox):
    logged_in.post(
        reverse("accounts:edit_profile"),
        {
            "organisation": customer.account.name,
            "name": customer.name,
            "email": "ada@new.example",
            "phone": customer.phone,
        },
    )
    customer.refresh_from_db()
    assert customer.email == "ada@example.org" and customer.pending_email == "ada@new.example"
    to_new = next(m for m in mailbox if m.to == ["ada@new.example"])
    warning = next(m for m in mailbox if m.to == ["ada@example.org"])
    assert "a•••@new.example" in warning.body
    link = re.search(r"https?://[^/\s]+(/confirm-email/[^\s]+/)", to_new.body).group(1)
    logged_in.get(link)
    customer.refresh_from_db()
    assert customer.email == "ada@new.example" and customer.pending_email == ""
    # The notice of the change goes to both addresses, one message each.
    assert {m.to[0] for m in mailbox[-2:]} == {"ada@example.org", "ada@new.example"}


def test_changing_to_an_address_another_account_uses_is_refused(
    logged_in, customer, other_customer, mailbox
):
    response = logged_in.post(
        reverse("accounts:edit_profile"),
        {
            "organisation": customer.account.name,
            "name": customer.name,
            "email": other_customer.email,
        },
    )
    assert b"already uses this email" in response.content
    customer.refresh_from_db()
    assert customer.pending_email == "" and not mailbox


@pytest.mark.parametrize(
    "bad",
    [
        {"name": ""},
        {"name": "n" * 151},
        {"phone": "9" * 41},
        {"email": "nope"},
        {"organisation": ""},
    ],
)
def test_bad_profile_input_changes_nothing_and_sends_nothing(logged_in, customer, mailbox, bad):
    before = (customer.name, customer.phone, customer.email, customer.account.name)
    data = {
        "organisation": customer.account.name,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
    }
    response = logged_in.post(reverse("accounts:edit_profile"), {**data, **bad})
    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.email, customer.account.name) == before
    assert not mailbox


def test_editing_without_a_csrf_token_is_refused(customer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(reverse("accounts:edit_profile"), {"name": "Mallory"})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Ada Lovelace"


@pytest.mark.promise("P18", "P19")
def test_each_optional_processing_can_be_switched_off_alone(logged_in, customer, mailbox):
    assert customer.allow_product_updates and customer.allow_support_followups
    logged_in.post(reverse("accounts:processing"), {"allow_support_followups": "on"})
    customer.refresh_from_db()
    assert not customer.allow_product_updates
    assert customer.allow_support_followups
    assert not customer.allow_analytics
    assert "Product-update emails: on -> off" in mailbox[0].body


def test_the_processing_page_says_its_switches_need_a_save(logged_in, customer, mailbox):
    page = logged_in.get(reverse("accounts:processing")).content.decode()
    assert "Nothing changes until you press “Save my choices”" in page
    assert ">Save my choices</button>" in page and "Each switch applies at once" not in page
    unchanged = {
        f: "on"
        for f in ("allow_product_updates", "allow_support_followups")
        if getattr(customer, f)
    }
    saved = logged_in.post(reverse("accounts:processing"), unchanged, follow=True)
    assert "Nothing changed: these were already your choices." in saved.content.decode()
    assert not mailbox


@pytest.mark.promise("P18")
def test_usage_analytics_is_off_until_the_customer_switches_it_on(customer):
    assert customer.allow_analytics is False


@pytest.mark.promise("P19")
def test_a_password_change_is_announced_without_echoing_it(logged_in, customer, password, mailbox):
    new = "another long passphrase"
    logged_in.post(
        reverse("accounts:change_password"), {"current_password": password, "new_password": new}
    )
    customer.refresh_from_db()
    assert customer.check_password(new)
    assert "Password was changed" in mailbox[0].body and new not in mailbox[0].body


def test_a_wrong_current_password_changes_nothing(logged_in, customer, password, mailbox):
    response = logged_in.post(
        reverse("accounts:change_password"),
        {"current_password": "wrong", "new_password": "whatever long enough"},
    )
    assert b"not correct" in response.content
    customer.refresh_from_db()
    assert customer.check_password(password) and not mailbox


def test_my_account_requires_login(client, db):
    response = client.get(reverse("accounts:my_account"))
    assert response.status_code == 302 and reverse("accounts:login") in response.url


@pytest.mark.promise("P15")
def test_my_account_speaks_the_customers_language_not_the_codes(logged_in, customer):
    services.update_profile(customer, by=customer, name="Ada King")  # an audit event
    page = logged_in.get(reverse("accounts:my_account")).content.decode()
    assert "Audit events" in page
    assert "TIDINGS_" not in page
    assert not re.search(r"\(P\d+", page)


@pytest.mark.promise("P15")
def test_my_account_lists_support_attachments_without_reading_their_bytes(logged_in, customer):
    # Each attachment's bytes are encrypted: loading them to show a name and a size would
    # decrypt up to fifty large files for every view of the page.
    big = Accepted("scan.pdf", "application/pdf", b"%PDF-1.4 " + b"x" * 2_000_000)
    desk.open_conversation(user=customer, subject="Invoice", body="See the scan", attachments=[big])
    with CaptureQueriesContext(connection) as queries:
        page = logged_in.get(reverse("accounts:my_account")).content.decode()
    assert "scan.pdf" in page
    read = [q["sql"] for q in queries if 'FROM "desk_attachment"' in q["sql"]]
    assert read, "the attachments are listed"
    assert not [sql for sql in read if '"desk_attachment"."data"' in sql]
