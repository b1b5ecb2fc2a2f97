"""French throughout (issue 15): the language comes from the browser for visitors, from
the footer's selector, and from My Account for a user, who keeps it on every browser
and gets Tidings's mails in it; dates in the user's own time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse

from tidings.accounts import services
from tidings.accounts.models import User
from tidings.staff.models import AuditEvent

COOKIE = settings.LANGUAGE_COOKIE_NAME
pytestmark = pytest.mark.django_db


def html_lang(response) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def test_a_visitor_reads_the_site_in_the_language_of_their_browser(client):
    french = client.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    assert html_lang(french) == "fr"
    assert "Se connecter" in french.content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert html_lang(english) == "en" and "Log in" in english.content.decode()
    assert html_lang(client.get("/", HTTP_ACCEPT_LANGUAGE="de-DE")) == "en"


def test_the_footer_selector_sets_the_language_cookie_and_goes_back(client):
    response = client.post(
        reverse("accounts:set_language"), {"language": "fr", "next": "/contact/"}
    )
    assert response.status_code == 302 and response["Location"] == "/contact/"
    assert response.cookies[COOKIE].value == "fr"
    assert html_lang(client.get("/contact/", HTTP_ACCEPT_LANGUAGE="en")) == "fr"


def test_the_selector_refuses_an_unknown_language_and_a_foreign_next(client):
    response = client.post(
        reverse("accounts:set_language"), {"language": "xx", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert COOKIE not in response.cookies
    assert html_lang(client.get("/")) == "en"


def test_a_visitor_page_sets_no_cookie_before_a_choice(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="fr")
    assert not response.cookies


def test_a_user_chooses_french_in_my_account_and_keeps_it_everywhere(client, customer):
    client.force_login(customer)
    response = client.post(
        reverse("accounts:change_locale"),
        {"language": "fr", "time_zone": "Europe/Paris", "contact_language": "fr"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.language == "fr" and customer.time_zone == "Europe/Paris"
    assert customer.account.language == "fr"
    audited = AuditEvent.objects.filter(target_id=str(customer.pk)).values_list("fields", flat=True)
    assert any("language" in fields for fields in audited)
    # Another browser, which asks for English: the user's choice wins.
    other = type(client)()
    other.force_login(customer)
    page = other.get(reverse("accounts:my_account"), HTTP_ACCEPT_LANGUAGE="en")
    assert html_lang(page) == "fr" and "Mon compte" in page.content.decode()


def test_a_bad_language_or_time_zone_changes_nothing(client, customer):
    client.force_login(customer)
    for data in (
        {"language": "xx", "time_zone": "UTC", "contact_language": "en"},
        {"language": "fr", "time_zone": "US/Eastern", "contact_language": "en"},
        {"language": "fr", "time_zone": "UTC", "contact_language": "klingon"},
    ):
        response = client.post(reverse("accounts:change_locale"), data, follow=True)
        assert response.status_code == 200
        assert "message error" in response.content.decode()
    customer.refresh_from_db()
    assert (customer.language, customer.time_zone, customer.account.language) == ("", "", "en")


def test_logging_in_makes_the_browsers_language_the_users_own(client, customer, password):
    response = client.post(
        reverse("accounts:login"),
        {"username": customer.email, "password": password},
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.language == "fr"  # the language of their mails from now on
    assert COOKIE not in response.cookies  # logged in, the profile says it
    page = client.get(reverse("accounts:my_account"), HTTP_ACCEPT_LANGUAGE="en")
    assert html_lang(page) == "fr"


def test_tidings_mails_a_user_in_their_language(customer, mailbox):
    customer.language = "fr"
    customer.save()
    services.update_profile(customer, by=customer, name="Ada King")
    (mail,) = mailbox
    assert mail.subject.startswith("Vos données personnelles chez")
    assert "Bonjour Ada King," in mail.body
    User.objects.filter(pk=customer.pk).update(language="en")
    services.update_profile(customer, by=customer, name="Ada Lovelace")
    assert mailbox[1].subject.startswith("Your personal data at")


def test_dates_are_shown_in_the_users_time_zone_and_language(client, customer):
    customer.date_joined = datetime(2026, 12, 6, 2, 47, 16, 677284, tzinfo=UTC)
    customer.language, customer.time_zone = "fr", "Asia/Tokyo"
    customer.save()
    client.force_login(customer)
    page = client.get(reverse("accounts:my_account")).content.decode()
    assert "6 décembre 2026 11:47" in page  # 02:47 UTC is 11:47 in Tokyo
    assert "2026-12-06 02:47:16" not in page
