from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "audience"

    def ready(self) -> None:
        from tidings.audience import lookups, privacy  # noqa: F401  (JSON lookups, data map)
