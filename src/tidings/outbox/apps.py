from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "tidings.outbox"
    label = "outbox"
    verbose_name = "Local outbox"

    def ready(self) -> None:
        from tidings.outbox import privacy  # noqa: F401
