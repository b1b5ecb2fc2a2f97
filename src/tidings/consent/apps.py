from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "tidings.consent"
    label = "consent"

    def ready(self) -> None:
        from tidings.consent import privacy  # noqa: F401  (data map entries)
