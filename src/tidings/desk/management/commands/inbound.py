"""Run the support desk's SMTP listener (`tidings inbound`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tidings.desk import listener


class Command(BaseCommand):
    help = "Take mail to the support address over SMTP (TIDINGS_INBOUND_HOST/PORT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None)
        parser.add_argument("--port", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        listener.serve(options["host"], options["port"])
