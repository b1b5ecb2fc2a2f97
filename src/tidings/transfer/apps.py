from django.apps import AppConfig


class TransferConfig(AppConfig):
    name = "tidings.transfer"
    label = "transfer"
    verbose_name = "imports and exports"

    def ready(self) -> None:
        from tidings.transfer import privacy, signals  # noqa: F401  (data map, file cleanup)
