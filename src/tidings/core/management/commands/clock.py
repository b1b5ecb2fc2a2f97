"""`tidings clock [show|advance STEP|reset]`: the test clock (core/clock.py),
development only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tidings.core import clock


class Command(BaseCommand):
    help = "Show, move forward (advance 2d) or reset the test clock (TIDINGS_TEST_CLOCK)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", nargs="?", choices=["show", "advance", "reset"], default="show"
        )
        parser.add_argument("step", nargs="?", help="with advance: 30m, 6h, 2d, 1w")

    def handle(self, *args: Any, action: str, step: str | None, **options: Any) -> None:
        if not clock.enabled():
            # This process reads its own environment, not the running Tidings's: the
            # usual miss is a second terminal without the two variables.
            again = " ".join(["tidings clock", action, step or ""]).strip()
            raise CommandError(
                "the test clock is off in this command's settings (development only): "
                "give it the settings Tidings runs with, as in "
                f"`TIDINGS_DEBUG=true TIDINGS_TEST_CLOCK=true {again}`"
            )
        try:
            if action == "advance":
                clock.advance(clock.parse_step(step or ""))
            elif action == "reset":
                clock.reset()
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"test clock: {clock.now():%Y-%m-%d %H:%M:%S %Z} ({clock.offset()} ahead of real time)"
        )
