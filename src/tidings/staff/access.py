"""Who may see customers' data as staff outside a console page (a WebSocket of the
desk's live chat): the console's own conditions, read from the session as the pages'
middleware reads them (P7, P9)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from tidings.staff.reason import reason_in


def second_factor_verified(user: Any, session: SessionBase) -> bool:
    """What django_otp's middleware makes `request.user.is_verified()` of a page: the
    session names a confirmed device of this user."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def refusal(user: Any, session: SessionBase, *, permission: str) -> str | None:
    """Why `user` may not act as staff with `permission` here, or None: staff, the
    permission, a verified second factor when STAFF_REQUIRE_2FA (the console's
    has_permission), and a reason stated for looking at customers' data."""
    # Anyone not logged in (AnonymousUser) is neither active nor staff.
    if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
        return "not staff"
    if not user.has_perm(permission):
        return "no permission"
    if settings.STAFF_REQUIRE_2FA and not second_factor_verified(user, session):
        return "second factor not verified"
    if reason_in(session) is None:
        return "no reason stated"
    return None
