"""Writes to staff members: their role, and with it what they may reach (P7). In
accounts, the user model's own app: staff (the roles, the audit) sits below it."""

from __future__ import annotations

from django.db import transaction

from tidings.accounts.models import User
from tidings.staff import audit
from tidings.staff.models import StaffRole


class StaffError(Exception):
    """A staff change that cannot be made; the message says why."""


def set_staff_role(user: User, role: str, *, by: User | None, reason: str = "") -> User:
    """Give `user` a staff role ("" for none); their group follows and the change is audited.

    Only the operator's own people can be staff: a customer's user never gets a role, so
    no customer login can ever reach another tenant's data.
    """
    if role not in StaffRole.values:
        raise StaffError(f"Unknown staff role: {role!r}")
    if role and user.account_id is not None:
        raise StaffError("A customer's user cannot be given a staff role.")
    with transaction.atomic():
        user.staff_role = role
        user.is_staff = bool(role)
        # A superuser bypasses every permission: only an administrator may stay one.
        if role != StaffRole.ADMIN:
            user.is_superuser = False
        fields = ["is_staff", "is_superuser", "staff_role"]
        user.save(update_fields=fields)  # the post_save hook moves the user to the role's group
        audit.record(audit.AuditEvent.Action.UPDATE, user, by=by, fields=fields, reason=reason)
    return user
