"""Fixtures of the automations' tests: an account that may send, a list, a welcome
series of two steps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

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


def at_once(work: Callable[[], None], times: int = 2) -> list[BaseException]:
    """Run `work` in `times` threads at once (each with its own database connection,
    closed at its end); the errors they raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported to the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
