from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationsConfig(AppConfig):
    name = "tidings.automations"
    label = "automations"

    def ready(self) -> None:
        from tidings.automations import privacy, watch  # noqa: F401  (data map entries)

        # The triggers' database triggers; SQLite drops them when a migration rebuilds
        # a table.
        post_migrate.connect(watch.after_migrate, sender=self)
