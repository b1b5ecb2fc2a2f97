"""Third parties added in the staff console are announced; choices are kept 3 years."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from tests.factories import StaffFactory, UserFactory
from tidings.accounts.models import User
from tidings.consent.models import ConsentRecord, ThirdParty
from tidings.consent.services import record_choice
from tidings.core import retention
from tidings.privacy.services import erase_account


@pytest.mark.promise("P24")
def test_admin_adds_a_third_party_in_the_console_and_customers_are_told(client, mailbox, settings):
    settings.STAFF_REQUIRE_2FA = False
    customer = UserFactory(email="ada@example.org")
    admin = StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
    client.force_login(admin)
    response = client.post(
        "/staff/admin/consent/thirdparty/add/",
        {
            "name": "Helpdesk Chat",
            "category": "support",
            "purpose": "live chat with our support",
            "data_received": "your messages and browser details",
            "policy_url": "https://chat.example.test/privacy",
            "opt_out_url": "",
            "script_src": "https://chat.example.test/widget.js",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    party = ThirdParty.objects.get()
    assert party.host == "chat.example.test" and party.announced_at is not None
    assert [m.to for m in mailbox] == [[customer.email]]


def test_support_agents_cannot_add_third_parties(client, db, settings):
    settings.STAFF_REQUIRE_2FA = False
    client.force_login(StaffFactory(email="agent@operator.example"))
    response = client.post("/staff/admin/consent/thirdparty/add/", {"name": "X"})
    assert response.status_code == 403
    assert ThirdParty.objects.count() == 0


@pytest.mark.promise("P22", "P12")
def test_choices_are_kept_three_years_as_proof_then_deleted(db):
    with time_machine.travel(dt.datetime(2023, 1, 1, tzinfo=dt.UTC)):
        old = record_choice(categories=[], method="banner", version="v1")
    recent = record_choice(categories=["analytics"], method="banner", version="v1")
    assert retention.run("cookie choices", now=timezone.now()) == 1
    assert list(ConsentRecord.objects.all()) == [recent]
    assert old.pk not in ConsentRecord.objects.values_list("pk", flat=True)


@pytest.mark.promise("P22", "P13")
def test_erasing_an_account_keeps_the_proof_detached_from_the_customer(db):

    customer = UserFactory()
    record = record_choice(categories=["analytics"], method="banner", version="v1", user=customer)
    account = customer.account
    account.status = account.Status.CLOSED
    account.closed_at = timezone.now()
    account.save()
    erase_account(account.pk)
    record.refresh_from_db()
    assert record.user_id is None and record.categories == ["analytics"]
