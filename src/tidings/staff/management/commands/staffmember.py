"""Add a staff member, change their role, or give them a new authenticator (P7, P9).

Secrets (a generated password, the otpauth:// link) go to a file in the data directory
readable only by the operator's account, never to the terminal or a log.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tidings.accounts.models import User
from tidings.accounts.staff_roles import StaffError, set_staff_role
from tidings.core import baseurl
from tidings.core.addresses import canonical
from tidings.staff import audit

ROLES = [role for role in User.StaffRole.values if role]


class Command(BaseCommand):
    help = (
        "Create a staff member (with --role), change a staff member's role, or replace their "
        "authenticator with --new-device. Credentials are written to a file in the data directory."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", choices=[*ROLES, "none"])
        parser.add_argument("--name", default="", help="for a new staff member")
        parser.add_argument("--new-device", action="store_true", help="replace their authenticator")
        parser.add_argument("--reason", default="tidings manage staffmember")

    def handle(
        self,
        *args: Any,
        email: str,
        role: str | None,
        name: str,
        new_device: bool,
        reason: str,
        **options: Any,
    ) -> None:
        email = canonical(email)
        lines: list[str] = []
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                if not role or role == "none":
                    raise CommandError(f"No user {email}; give --role to create a staff member.")
                password = secrets.token_urlsafe(18)
                user = User.objects.create_user(
                    email=email,
                    password=password,
                    name=name or email,
                    email_confirmed_at=timezone.now(),
                )
                audit.record(
                    audit.AuditEvent.Action.CREATE,
                    user,
                    by=None,
                    fields=["email", "name"],
                    reason=reason,
                )
                lines.append(f"password: {password}")
                new_device = True
            elif user.account_id is not None:
                raise CommandError(f"{email} is a customer's user, not a staff member.")
            if role:
                try:
                    set_staff_role(user, "" if role == "none" else role, by=None, reason=reason)
                except StaffError as error:
                    raise CommandError(str(error)) from None
            if new_device:
                # The old authenticator may be lost or in the wrong hands: it stops working.
                TOTPDevice.objects.filter(user=user).delete()
                device = TOTPDevice.objects.create(user=user, name="staffmember", confirmed=True)
                audit.record(
                    audit.AuditEvent.Action.UPDATE,
                    user,
                    by=None,
                    fields=["totp_device"],
                    reason=reason,
                )
                lines.append(f"totp (add to your authenticator app): {device.config_url}")
        if lines:
            path = _write_credentials(user, lines)
            self.stdout.write(f"{email}: credentials written to {path} (readable by you only)")
        else:
            self.stdout.write(f"{email}: role is now {user.staff_role or 'none'}")


def _write_credentials(user: User, lines: list[str]) -> Path:
    path = settings.DATA_DIR / f"staff-{user.pk}-credentials.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a looser mode
    with os.fdopen(fd, "w") as handle:
        handle.write(
            f"# Written {timezone.now():%Y-%m-%d %H:%M} UTC by `tidings manage staffmember`.\n"
            f"# Hand it to {user.email} safely, then delete this file.\n"
            f"# Log in at {baseurl.base_url()}/staff/admin/\n"
            f"email: {user.email}\n" + "".join(f"{line}\n" for line in lines)
        )
    return path
