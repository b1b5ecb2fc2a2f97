"""The operator's relays, used by every account that has none of its own:
`tidings manage relay list | add | remove`. The password is read from the environment
variable named by --password-env, never from the command line (shell history)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tidings.sending import services
from tidings.sending.models import Relay


class Command(BaseCommand):
    help = "List, add or remove the operator's SMTP relays."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        add = sub.add_parser("add")
        add.add_argument("--name", required=True)
        add.add_argument("--host", required=True)
        add.add_argument("--port", type=int, default=587)
        add.add_argument("--security", choices=Relay.Security.values, default="starttls")
        add.add_argument("--username", default="")
        add.add_argument("--password-env", default="", help="variable holding the password")
        add.add_argument("--max-connections", type=int, default=4)
        add.add_argument("--rate-per-second", type=int, default=0)
        add.add_argument("--rate-per-hour", type=int, default=0)
        remove = sub.add_parser("remove")
        remove.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        operator = Relay.objects.filter(account__isnull=True)
        if options["action"] == "list":
            for relay in operator.order_by("pk"):
                self.stdout.write(
                    f"{relay.pk}\t{relay.name}\t{relay.host}:{relay.port}\t{relay.security}\t"
                    f"{relay.rate_per_second}/s\t{relay.rate_per_hour}/h\t"
                    f"{'on' if relay.active else 'off'}"
                )
        elif options["action"] == "add":
            password = ""
            if options["password_env"]:
                password = os.environ.get(options["password_env"], "")
                if not password:
                    raise CommandError(f"{options['password_env']} is empty or not set")
            relay = Relay(
                account=None,
                name=options["name"],
                host=options["host"],
                port=options["port"],
                security=options["security"],
                username=options["username"],
                password=password,
                max_connections=options["max_connections"],
                rate_per_second=options["rate_per_second"],
                rate_per_hour=options["rate_per_hour"],
            )
            try:
                services.save_relay(relay)
            except (services.SettingsError, ValueError) as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"added relay {relay.pk}: {relay}")
        else:
            found = operator.filter(pk=options["id"]).first()
            if found is None:
                raise CommandError(f"no operator relay {options['id']}")
            services.remove_relay(found)
            self.stdout.write(f"removed relay {options['id']}")
