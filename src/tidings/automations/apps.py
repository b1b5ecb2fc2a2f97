from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "tidings.automations"
    label = "automations"

    def ready(self) -> None:
        from tidings.automations import privacy  # noqa: F401  (data map entries)
