"""Registration, confirmation and login (P1, P2, P9)."""

import re

import pytest
from django.urls import reverse

import tidings.settings as production
from tidings.accounts.models import Account, User
from tidings.privacy.models import CollectionRecord
from tidings.staff.models import AuditEvent

FORM = {
    "organisation": "Acme Newsletters",
    "name": "Ada Lovelace",
    "email": "Ada@Example.org",
    "password": "a long enough passphrase",
}


def confirmation_link(message) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r"https?://[^/\s]+(/confirm/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.mark.promise("P1")
def test_registration_needs_only_organisation_name_email_and_password(client, mailbox):
    response = client.post(reverse("accounts:register"), FORM)
    assert response.status_code == 200
    assert b"Check your email" in response.content
    user = User.objects.get()
    assert user.email == "ada@example.org"
    assert user.phone == "" and user.postal_address == ""
    assert user.account.name == "Acme Newsletters"
    assert not user.email_confirmed


@pytest.mark.promise("P1")
def test_registration_asks_for_no_address_and_no_phone(client, db):
    """They are asked only where needed: the address when ordering (for the invoice), a
    phone only if the customer adds one in My Account (found walking the order flow: the
    form asked for both, as optional)."""
    form = client.get(reverse("accounts:register")).context["form"]
    assert set(form.fields) == {"organisation", "name", "email", "password"}
    assert all(f.required for f in form.fields.values())


@pytest.mark.promise("P2")
def test_registration_records_what_was_collected_why_and_on_which_basis(client, mailbox):
    # A phone posted anyway is not taken: the form has no such field.
    client.post(reverse("accounts:register"), {**FORM, "phone": "+41 44 000 00 00"})
    records = CollectionRecord.objects.filter(point="registration")
    collected = {r.data_collected[0]: r for r in records}
    assert set(collected) == {"organisation name", "name", "email", "password"}
    assert collected["email"].legal_basis == "contract"
    assert User.objects.get().phone == ""
    assert all(r.purpose and r.collected_at for r in records)


@pytest.mark.promise("P9")
def test_passwords_are_hashed_with_argon2(client, mailbox, settings):
    # The suite hashes with MD5 for speed (tests/settings.py); this test runs with the
    # production hashers, and a login checks the Argon2 hash.
    settings.PASSWORD_HASHERS = production.PASSWORD_HASHERS
    client.post(reverse("accounts:register"), FORM)
    assert User.objects.get().password.startswith("argon2$")
    client.get(confirmation_link(mailbox[0]))
    response = client.post(
        reverse("accounts:login"), {"username": "ada@example.org", "password": FORM["password"]}
    )
    assert response.status_code == 302 and response.url == reverse("sending:dashboard")
    assert User.objects.get().password.startswith("argon2$")


def test_confirmation_link_confirms_and_then_login_works(client, mailbox):
    client.post(reverse("accounts:register"), FORM)
    assert len(mailbox) == 1
    link = confirmation_link(mailbox[0])
    response = client.get(link, follow=True)
    assert b"is confirmed" in response.content
    assert User.objects.get().email_confirmed
    response = client.post(
        reverse("accounts:login"), {"username": "ada@example.org", "password": FORM["password"]}
    )
    assert response.status_code == 302 and response.url == reverse("sending:dashboard")


def test_login_before_confirming_is_refused_with_a_clear_message(client, mailbox):
    client.post(reverse("accounts:register"), FORM)
    response = client.post(
        reverse("accounts:login"), {"username": "ada@example.org", "password": FORM["password"]}
    )
    assert response.status_code == 200
    assert b"Confirm your email address first" in response.content


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-3] + "xyz", lambda t: "forged" + t, lambda t: "nonsense"]
)
def test_a_forged_confirmation_link_is_refused_and_changes_nothing(client, mailbox, mangle):
    client.post(reverse("accounts:register"), FORM)
    token = confirmation_link(mailbox[0]).split("/")[2]
    response = client.get(reverse("accounts:confirm", args=[mangle(token)]))
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert not User.objects.get().email_confirmed


def test_an_expired_confirmation_link_is_refused(client, mailbox, time_machine):
    time_machine.move_to("2026-01-01 10:00Z")
    client.post(reverse("accounts:register"), FORM)
    link = confirmation_link(mailbox[0])
    time_machine.move_to("2026-01-05 10:00Z")
    response = client.get(link)
    assert response.status_code == 400
    assert b"expired" in response.content
    assert not User.objects.get().email_confirmed


def test_a_known_address_gets_the_same_answer_and_its_owner_a_mail(client, mailbox, customer):
    """No account enumeration: the page cannot tell a known address from a new one; the
    owner of the address, and only they, hears of the attempt."""
    new = client.post(reverse("accounts:register"), {**FORM, "email": "new@example.org"})
    known = client.post(reverse("accounts:register"), {**FORM, "email": "ADA@example.ORG"})
    assert known.status_code == new.status_code == 200
    assert known.content.decode().replace("ada@example.org", "new@example.org") == (
        new.content.decode()
    )
    assert User.objects.filter(email="ada@example.org").count() == 1
    assert Account.objects.count() == 2  # the customer's and new@'s
    warning = [m for m in mailbox if m.to == ["ada@example.org"]]
    assert len(warning) == 1
    assert "Someone tried" in warning[0].subject and "/login/" in warning[0].body


def test_an_unconfirmed_known_address_gets_its_confirmation_link_again(client, mailbox):
    client.post(reverse("accounts:register"), FORM)
    client.post(reverse("accounts:register"), {**FORM, "email": "ADA@example.ORG"})
    assert User.objects.count() == 1 and Account.objects.count() == 1
    assert [confirmation_link(m)[:9] for m in mailbox] == ["/confirm/", "/confirm/"]


def test_mails_about_a_known_address_are_limited(client, mailbox, customer):
    for _ in range(5):
        client.post(reverse("accounts:register"), {**FORM, "email": "ada@example.org"})
    assert len([m for m in mailbox if m.to == ["ada@example.org"]]) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"email": "not-an-address"},
        {"email": "a@b@c.org"},
        {"name": "x" * 151},
        {"organisation": "o" * 201},
        {"password": "short"},
        {"password": "password123"},
    ],
)
def test_bad_registration_input_gets_a_message_and_creates_nothing(client, db, change):
    response = client.post(reverse("accounts:register"), {**FORM, **change})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.exists() and not Account.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.promise("P9")
def test_repeated_failed_logins_lock_the_login_out(client, customer, password):
    url = reverse("accounts:login")
    for _ in range(5):
        client.post(url, {"username": customer.email, "password": "wrong password"})
    response = client.post(url, {"username": customer.email, "password": password})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content


@pytest.mark.promise("P9")
def test_login_form_without_csrf_token_is_refused(customer, password):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("accounts:login"), {"username": customer.email, "password": password}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_password_reset_sets_a_new_password_and_announces_it(client, customer, mailbox):
    client.post(reverse("accounts:password_reset"), {"email": customer.email})
    assert len(mailbox) == 1
    path = re.search(r"https?://[^/\s]+(/password-reset/[^\s]+/)", mailbox[0].body).group(1)
    response = client.get(path, follow=True)
    form_url = response.redirect_chain[-1][0]
    new = "an entirely new passphrase"
    response = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(new)
    assert "Password" in mailbox[-1].body and "changed" in mailbox[-1].subject


def test_the_confirmation_mail_goes_out_over_real_smtp(client, smtp_mail):
    client.post(reverse("accounts:register"), FORM)
    [message] = smtp_mail.to("ada@example.org")
    assert message["Subject"].startswith("Confirm your email address")
    link = re.search(r"https?://[^/\s]+(/confirm/[^\s]+/)", message.get_content()).group(1)
    assert client.get(link, follow=True).status_code == 200
    assert User.objects.get().email_confirmed
