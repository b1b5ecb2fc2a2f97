from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PrivacyConfig(AppConfig):
    name = "tidings.privacy"
    label = "privacy"

    def ready(self) -> None:
        from tidings.core import collection
        from tidings.privacy import (  # noqa: F401
            portability,  # deleting an archive's row deletes its file
            privacy,  # data map entries
            restrict,
        )
        from tidings.privacy.services import record_collection

        # After every migrate, all apps' tables made: their foreign keys refuse a deletion
        # at once, which costs PostgreSQL less than waiting for the commit (restrict.py).
        post_migrate.connect(restrict.after_migrate, sender=self, dispatch_uid="restrict-deletes")

        collection.collected.connect(record_collection, dispatch_uid="privacy-collection")
