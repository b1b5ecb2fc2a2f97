from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "audience"

    def ready(self) -> None:
        from tidings.audience import counters, growth, lookups, privacy, rights  # noqa: F401  (JSON lookups, data map)
        from tidings.privacy.services import erasure_starting

        # An account's erasure hands its contacts' open requests to the privacy office.
        erasure_starting.connect(rights.on_erasure_starting, dispatch_uid="audience.rights")

        # SQLite drops a table's triggers when a migration rebuilds the table.
        post_migrate.connect(counters.after_migrate, sender=self)
        post_migrate.connect(growth.after_migrate, sender=self)
