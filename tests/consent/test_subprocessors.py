"""Sub-processors (P24): the notice period cannot be set below the 30 days the policy
states (the start refuses, the model refuses), and the list covers the service providers
that receive personal data on the servers' side (mail delivery, hosting, backups), as
entries added in the console, announced like any other."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import time_machine
from django.core.exceptions import ValidationError

from tests.factories import StaffFactory, UserFactory
from tidings.accounts.models import User
from tidings.consent.models import ThirdParty
from tidings.consent.services import ThirdPartyRejected, announce_third_party
from tidings.consent.state import banner_version

START = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
RELAY = {
    "name": "Example Mail Relay",
    "category": "mail",
    "purpose": "delivering the mail we send",
    "data_received": "recipients' addresses and the messages",
    "policy_url": "https://relay.example.test/privacy",
}


def _start_with(tmp_path, days: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDINGS_SUBPROCESSOR_NOTICE_DAYS": days}
    env["TIDINGS_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-c", "import tidings.settings as s; print(s.CONSENT_NOTICE_DAYS)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.promise("P24")
@pytest.mark.parametrize("days", ["-5", "0", "29"])
def test_a_notice_period_below_the_policy_s_stops_the_start(tmp_path, days):
    started = _start_with(tmp_path, days)
    assert started.returncode != 0
    assert "TIDINGS_SUBPROCESSOR_NOTICE_DAYS must be at least 30" in started.stderr
    assert f"not {days}" in started.stderr


def test_thirty_days_or_more_starts(tmp_path):
    started = _start_with(tmp_path, "45")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "45"


@pytest.mark.promise("P24")
def test_the_model_refuses_a_third_party_effective_before_thirty_days(db):
    party = ThirdParty(**RELAY, added_at=START, effective_at=START - dt.timedelta(days=5))
    with pytest.raises(ValidationError, match="at least 30 days"):
        party.full_clean()
    with pytest.raises(ValidationError, match="at least 30 days"):
        party.save()
    party.effective_at = START + dt.timedelta(days=29)
    with pytest.raises(ValidationError):
        party.save()
    assert not ThirdParty.objects.exists()


@pytest.mark.promise("P24")
def test_a_negative_setting_overridden_at_run_time_is_refused_and_nobody_is_told(
    db, settings, mailbox
):
    UserFactory(email="ada@example.org")
    settings.CONSENT_NOTICE_DAYS = -5
    with pytest.raises(ThirdPartyRejected, match="at least 30 days"):
        announce_third_party(**RELAY)
    assert not ThirdParty.objects.exists() and not mailbox


@pytest.mark.promise("P24")
def test_a_mail_provider_is_added_in_the_console_announced_and_listed(client, mailbox, settings):
    settings.STAFF_REQUIRE_2FA = False
    customer = UserFactory(email="ada@example.org")
    client.force_login(
        StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
    )
    form = {**RELAY, "opt_out_url": "", "script_src": "https://relay.example.test/t.js"}
    with time_machine.travel(START, tick=False):
        before = banner_version()
        refused = client.post("/staff/admin/consent/thirdparty/add/", form)
        assert refused.status_code == 200 and "has no tag" in refused.content.decode()
        assert not ThirdParty.objects.exists() and not mailbox
        form["script_src"] = ""
        response = client.post("/staff/admin/consent/thirdparty/add/", form)
        assert response.status_code == 302
    party = ThirdParty.objects.get()
    assert party.effective_at == START + dt.timedelta(days=30)
    (mail,) = mailbox
    assert mail.to == [customer.email] and "service provider" in mail.body
    client.logout()
    with time_machine.travel(START + dt.timedelta(days=1)):
        page = client.get("/subprocessors/").content.decode()
        assert "upcoming, from 2026-03-31" in page and "Example Mail Relay" in page
    with time_machine.travel(START + dt.timedelta(days=31)):
        page = client.get("/subprocessors/").content.decode()
        providers = page.split('id="providers-h"')[1].split('id="current-h"')[0]
        assert "Example Mail Relay" in providers and "Mail delivery" in providers
        # A provider on the servers' side is no cookie choice: the banner stays the same.
        assert banner_version() == before
        cookies = client.get("/cookies/").content.decode()
        assert "Example Mail Relay" not in cookies
