"""Fixtures of the automations' tests: an account that may send, a list, a welcome
series of two steps."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.audience.models import MailingList
from tidings.automations import services
from tidings.automations.models import Automation
from tidings.sending import services as sending

POSTAL_ADDRESS = "12 Baker Lane, 1000 Brussels, Belgium"


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    sending.set_postal_address(customer.account, POSTAL_ADDRESS, by=customer)
    return customer.account


@pytest.fixture
def newsletter(account):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=account, name="Newsletter")


def welcome_series(account: Any, mailing_list: MailingList, by: Any, waits=(0, 2)) -> Automation:
    automation = services.create_automation(
        account, name="Welcome", mailing_list=mailing_list, by=by
    )
    for n, wait in enumerate(waits, start=1):
        services.add_step(
            automation,
            wait_days=wait,
            subject=f"Welcome {n}, {{{{ contact.first_name }}}}",
            from_email="news@news.example.org",
            body=f"<p>Message {n} for {{{{ contact.name }}}}.</p>",
            by=by,
        )
    return automation


@pytest.fixture
def welcome(account, newsletter, customer):  # type: ignore[no-untyped-def]
    return welcome_series(account, newsletter, customer)
