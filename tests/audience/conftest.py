"""Fixtures of the audience tests: an account's lists and contacts, a logged-in client."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest

from tidings.audience import mailing_lists, services
from tidings.audience.models import MailingList, SubscriptionForm


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    return customer.account


@pytest.fixture
def newsletter(account):  # type: ignore[no-untyped-def]
    return mailing_lists.save_list(
        account,
        name="Newsletter",
        description="Once a month",
        visibility=MailingList.Visibility.PUBLIC,
        optin=MailingList.OptIn.DOUBLE,
    )


@pytest.fixture
def offers(account):  # type: ignore[no-untyped-def]
    return mailing_lists.save_list(
        account,
        name="Offers",
        visibility=MailingList.Visibility.PUBLIC,
        optin=MailingList.OptIn.SINGLE,
    )


@pytest.fixture
def signup_form(account, newsletter, offers) -> SubscriptionForm:  # type: ignore[no-untyped-def]
    return mailing_lists.save_form(
        account,
        name="Website footer",
        lists=[newsletter, offers],
        consent_text="I agree to receive the newsletter by email.",
    )


@pytest.fixture
def reader(account, newsletter, offers):  # type: ignore[no-untyped-def]
    """A contact on both lists, with two attributes (the contact's pages' tests)."""
    return services.add_contact(
        account,
        "reader@example.org",
        name="Rea Der",
        attributes={"city": "Ghent", "vip": True},
        lists=[newsletter, offers],
    )


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def link_in(message: EmailMessage | str, path: str) -> str:
    """The first link in a mail whose path starts with `path` (e.g. /subscribe/confirm/)."""
    body = message if isinstance(message, str) else _text(message)
    match = re.search(rf"https?://[^\s]+{re.escape(path)}[^\s]+", body)
    assert match, f"no {path} link in:\n{body}"
    return match.group(0)


def path_of(link: str) -> str:
    return urlsplit(link).path


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]
