from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tidings.billing"
    label = "billing"

    def ready(self) -> None:
        from tidings.billing import privacy  # noqa: F401
