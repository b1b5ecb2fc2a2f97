"""Create an operator admin with a generated password and a TOTP secret (P9)."""

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tidings.accounts.models import User
from tidings.core import baseurl


class Command(BaseCommand):
    help = "Create an operator admin; the credentials are written to a file in the data directory."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default="admin@localhost")
        parser.add_argument("--if-none", action="store_true")

    def handle(self, *args: Any, email: str, if_none: bool, **options: Any) -> None:
        if if_none and User.objects.filter(is_superuser=True).exists():
            return
        if User.objects.filter(email__iexact=email).exists():
            self.stderr.write(f"A user with the address {email} exists already.")
            raise SystemExit(1)
        password = secrets.token_urlsafe(18)
        user = User.objects.create_superuser(email=email, password=password, name="Operator admin")
        device = TOTPDevice.objects.create(user=user, name="createadmin", confirmed=True)
        path = settings.DATA_DIR / "admin-credentials.txt"
        path.touch(mode=0o600)
        path.write_text(
            f"# Created {timezone.now():%Y-%m-%d %H:%M} UTC by `tidings createadmin`.\n"
            f"# Log in at {baseurl.base_url()}/staff/admin/ ; then delete this file.\n"
            f"email: {email}\n"
            f"password: {password}\n"
            f"totp (add to your authenticator app): {device.config_url}\n"
        )
        self.stdout.write(f"Created the admin {email}. Credentials and 2FA secret: {path}")
