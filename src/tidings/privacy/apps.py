from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "tidings.privacy"
    label = "privacy"

    def ready(self) -> None:
        from tidings.privacy import (  # noqa: F401
            portability,  # deleting an archive's row deletes its file
            privacy,  # data map entries
        )
