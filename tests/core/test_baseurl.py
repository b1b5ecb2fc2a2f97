"""Links in mail start with the configured base URL, https whenever TIDINGS_SECURE is
on; settings are read at each call; a base URL saying http while secure warns at start."""

from __future__ import annotations

import logging
import re

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tidings.audience import links, services
from tidings.core import baseurl
from tidings.sending import tracking


@pytest.fixture
def secure(settings):  # type: ignore[no-untyped-def]
    settings.SECURE = True
    settings.BASE_URL = "http://news.example"


def test_links_in_mail_use_https_when_secure_is_on(secure, customer):
    contact = services.add_contact(customer.account, "reader@example.org")
    for url in (
        links.preference_url(contact),
        links.unsubscribe_url(contact),
        tracking.unsubscribe_url(contact),
        baseurl.absolute("/x/"),
    ):
        assert url.startswith("https://news.example/"), url


def test_the_links_follow_the_settings_at_each_call(settings, customer):
    contact = services.add_contact(customer.account, "reader@example.org")
    settings.BASE_URL = "https://one.example"
    assert links.preference_url(contact).startswith("https://one.example/")
    settings.BASE_URL = "https://two.example"
    assert links.preference_url(contact).startswith("https://two.example/")
    assert tracking.unsubscribe_url(contact).startswith("https://two.example/")


def test_registration_and_password_reset_mail_carry_https_links(secure, client, mailbox):
    client.post(
        reverse("accounts:register"),
        {"organisation": "Acme", "name": "Ada", "email": "ada@example.org",
         "password": "a long enough passphrase"},
    )  # fmt: skip
    UserFactory(email="grace@example.org")
    client.post(reverse("accounts:password_reset"), {"email": "grace@example.org"})
    assert len(mailbox) == 2
    for message in mailbox:
        found = re.findall(r"\bhttps?://\S+", message.body)
        assert found and all(u.startswith("https://news.example/") for u in found), found


def test_a_base_url_saying_http_while_secure_is_on_warns(secure, caplog):
    with caplog.at_level(logging.WARNING, logger="tidings"):
        assert baseurl.warn_if_insecure()
    assert "TIDINGS_SECURE" in caplog.text


def test_no_warning_when_the_base_url_is_https(settings):
    settings.SECURE, settings.BASE_URL = True, "https://news.example"
    assert not baseurl.warn_if_insecure()
