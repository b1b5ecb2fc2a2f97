"""DKIM keys of the operator's own mail (notices, product updates, password resets, and
mail to contacts sent "via" the operator): `tidings manage dkim list | add DOMAIN |
remove DOMAIN`. `add` prints the TXT record to publish; mail from that domain is signed
from then on."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tidings.sending import services
from tidings.sending.models import SendingDomain


class Command(BaseCommand):
    help = "List, add or remove the DKIM keys of the operator's own mail."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        add = sub.add_parser("add")
        add.add_argument("domain")
        add.add_argument("--selector", default="tidings")
        remove = sub.add_parser("remove")
        remove.add_argument("domain")

    def handle(self, *args: Any, **options: Any) -> None:
        operator = SendingDomain.objects.filter(account__isnull=True)
        if options["action"] == "list":
            for domain in operator.order_by("domain"):
                self.stdout.write(f"{domain.domain}\t{domain.dns_name}\t{domain.dns_value}")
        elif options["action"] == "add":
            try:
                domain = services.add_sending_domain(
                    None, options["domain"], selector=options["selector"]
                )
            except services.SettingsError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"added {domain.domain}: publish this TXT record, then mail from "
                f'@{domain.domain} is signed\n{domain.dns_name} TXT "{domain.dns_value}"'
            )
        else:
            found = operator.filter(domain=options["domain"].strip().lower()).first()
            if found is None:
                raise CommandError(f"no operator DKIM key for {options['domain']}")
            services.remove_sending_domain(found)
            self.stdout.write(f"removed the key of {found.domain}")
