"""`tidings manage staffmember`: how staff get a role and an authenticator (P7, P9)."""

from __future__ import annotations

import stat

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from tidings.accounts.models import User
from tidings.staff.models import AuditEvent


@pytest.mark.promise("P7", "P9")
def test_a_new_staff_member_gets_a_role_a_device_and_a_private_credentials_file(db):
    call_command("staffmember", "Bea@Operator.example", "--role", "support", "--name", "Bea")

    bea = User.objects.get(email="bea@operator.example")
    assert (bea.is_staff, bea.staff_role) == (True, "support")
    assert bea.groups.get().name == "Support agents"
    device = TOTPDevice.objects.get(user=bea)
    path = settings.DATA_DIR / f"staff-{bea.pk}-credentials.txt"
    assert device.config_url in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert AuditEvent.objects.filter(target_id=str(bea.pk), actor_kind="system").exists()


@pytest.mark.promise("P9")
def test_a_new_device_replaces_the_old_one(staff):
    old = TOTPDevice.objects.create(user=staff, name="lost phone", confirmed=True)
    call_command("staffmember", staff.email, "--new-device")
    assert list(TOTPDevice.objects.filter(user=staff)) != [old]
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_a_customers_user_is_refused(customer):
    with pytest.raises(CommandError):
        call_command("staffmember", customer.email, "--role", "admin")
