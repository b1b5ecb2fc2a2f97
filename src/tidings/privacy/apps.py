from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "tidings.privacy"
    label = "privacy"

    def ready(self) -> None:
        from tidings.core import collection
        from tidings.privacy import (  # noqa: F401
            portability,  # deleting an archive's row deletes its file
            privacy,  # data map entries
        )
        from tidings.privacy.services import record_collection

        collection.collected.connect(record_collection, dispatch_uid="privacy-collection")
