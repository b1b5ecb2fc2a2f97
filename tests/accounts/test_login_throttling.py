"""Guessing passwords (P9): a change of letter case is no new try, and one client may not
spray a password across many accounts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory

URL = "accounts:login"


def attempt(client, username: str, password: str, ip: str = "198.51.100.7"):  # type: ignore[no-untyped-def]
    return client.post(reverse(URL), {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.promise("P9")
def test_changing_the_case_of_the_address_gives_no_more_guesses(client, customer, password):
    variants = [
        "ADA@example.org",
        "Ada@Example.org",
        "ada@EXAMPLE.ORG",
        " ada@example.org",
        "aDa@example.org",
    ]
    for typed in variants:
        attempt(client, typed, "wrong password")
    # The sixth try, even right and in yet another case, is held back.
    response = attempt(client, "ADA@EXAMPLE.org", password)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.promise("P9")
def test_one_client_spraying_a_password_over_many_accounts_is_stopped(
    client, customer, password, settings
):
    settings.LOGIN_IP_FAILURE_LIMIT = 10
    for n in range(10):  # one wrong password on ten accounts: no account reaches its limit
        UserFactory(email=f"user{n}@example.org")
        assert attempt(client, f"user{n}@example.org", "Summer2026!").status_code == 200
    # That client may not try again, not even the right password of another account...
    response = attempt(client, customer.email, password)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # ...while the customer, from their own address, logs in.
    response = attempt(client, customer.email, password, ip="203.0.113.9")
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_few_mistakes_from_one_office_lock_nobody_out(client, customer, password):
    for n in range(3):
        UserFactory(email=f"colleague{n}@example.org")
        attempt(client, f"colleague{n}@example.org", "typo")
    assert attempt(client, customer.email, password).status_code == 302
