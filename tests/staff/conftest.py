"""Staff console fixtures: staff of each role, logged in with a verified second factor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import StaffFactory
from tidings.accounts.models import User

REASON = "ticket 4521: customer asks to correct their address"


def current_token(device: TOTPDevice) -> str:
    """The code the staff member's authenticator app shows right now."""
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


def log_in_verified(client: Client, user: User) -> TOTPDevice:
    """What a successful password + TOTP login leaves in the session (django_otp.login)."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def state_reason(client: Client, reason: str = REASON) -> None:
    response = client.post("/staff/admin/reason/", {"reason": reason, "next": "/staff/admin/"})
    assert response.status_code == 302, response.content


@pytest.fixture
def console(client: Client) -> Callable[..., Client]:
    """Log `user` in to the console, verified, with a stated reason unless told not to."""

    def login(user: User, *, reason: str | None = REASON) -> Client:
        log_in_verified(client, user)
        if reason:
            state_reason(client, reason)
        return client

    return login


@pytest.fixture
def billing_staff(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="billing@operator.example", staff_role=User.StaffRole.BILLING)


@pytest.fixture
def privacy_officer(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="dpo@operator.example", staff_role=User.StaffRole.PRIVACY_OFFICER)


@pytest.fixture
def operator_admin(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
