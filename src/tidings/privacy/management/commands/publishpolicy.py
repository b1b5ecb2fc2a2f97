"""`tidings up` and `tidings migrate` run this: the policy follows the configuration."""

from typing import Any

from django.core.management.base import BaseCommand

from tidings.privacy.policy import latest_version, publish_policy


class Command(BaseCommand):
    help = "Publish the privacy policy as configured; a new version only if its text changed."

    def handle(self, *args: Any, **options: Any) -> None:
        before = latest_version()
        version = publish_policy()
        if before is not None and version.number == before.number:
            self.stdout.write(f"Privacy policy unchanged: version {version.number}.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Privacy policy version {version.number} published "
                    f"{version.published_at:%Y-%m-%d %H:%M %Z}: {version.changes}"
                )
            )
