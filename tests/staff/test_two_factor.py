"""Staff reach the console only with a second factor (P9)."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD
from tests.staff.conftest import current_token

pytestmark = pytest.mark.promise("P9")


def log_in(client, user, token: str = "") -> object:  # type: ignore[no-untyped-def]
    return client.post(
        "/staff/admin/login/?next=/staff/admin/",
        {"username": user.email, "password": PASSWORD, "otp_token": token, "next": "/staff/admin/"},
    )


def test_a_password_session_without_otp_is_refused_and_told_how_to_get_a_device(
    client, staff, customer
):
    client.force_login(staff)  # e.g. logged in through the customers' login page

    response = client.get(f"/staff/admin/accounts/user/{customer.pk}/change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/admin/login/")
    page = client.get(response["Location"])
    assert b"Ada Lovelace" not in page.content
    assert b"tidings manage staffmember" in page.content
    assert b"admin-credentials.txt" in page.content


def test_staff_without_a_device_cannot_log_in_and_are_told_why(client, staff):
    response = log_in(client, staff, token="123456")
    assert response.status_code == 200
    assert b"you have none set up yet" in response.content
    assert client.get("/staff/admin/").status_code == 302


def test_staff_get_in_with_their_password_and_a_valid_totp_code(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)

    response = log_in(client, staff, token=current_token(device))

    assert response.status_code == 302
    assert response["Location"] == "/staff/admin/"
    assert client.get("/staff/admin/").status_code == 200


def test_a_wrong_or_missing_code_is_refused(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    wrong = f"{(int(current_token(device)) + 1) % 10**6:06d}"
    assert log_in(client, staff, token=wrong).status_code == 200
    assert log_in(client, staff, token="").status_code == 200
    assert client.get("/staff/admin/").status_code == 302


def test_an_unconfirmed_device_does_not_count(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=False)
    response = log_in(client, staff, token=current_token(device))
    assert b"you have none set up yet" in response.content


def test_customers_never_get_in_even_with_a_device(client, customer):
    device = TOTPDevice.objects.create(user=customer, name="phone", confirmed=True)
    assert log_in(client, customer, token=current_token(device)).status_code == 200
    assert client.get("/staff/admin/").status_code == 302


def test_without_the_2fa_requirement_a_password_is_enough(client, staff, settings):
    settings.STAFF_REQUIRE_2FA = False
    assert log_in(client, staff).status_code == 302
    assert client.get("/staff/admin/").status_code == 200


def test_the_console_names_its_icon_so_no_browser_asks_for_a_missing_one(client, staff):
    """Walkpg: every page of the staff console (its login first) made the browser ask
    for /favicon.ico, which Tidings does not serve: a 404 in the console each time."""
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert icon in client.get("/staff/admin/login/").content.decode()
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    log_in(client, staff, token=current_token(device))
    assert icon in client.get("/staff/admin/").content.decode()
