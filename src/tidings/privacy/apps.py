from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "tidings.privacy"
    label = "privacy"

    def ready(self) -> None:
        from tidings.privacy import privacy  # noqa: F401  (data map entries)
