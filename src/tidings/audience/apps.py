from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "audience"

    def ready(self) -> None:
        from tidings.audience import counters, growth, lookups, privacy  # noqa: F401  (JSON lookups, data map)

        # SQLite drops a table's triggers when a migration rebuilds the table.
        post_migrate.connect(counters.after_migrate, sender=self)
        post_migrate.connect(growth.after_migrate, sender=self)
