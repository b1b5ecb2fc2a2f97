"""Re-encrypt every encrypted field with the newest key (P8 key rotation)."""

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from tidings.core.fields import encrypted_fields, rotation_followers

BATCH = 1000


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields with the first key of TIDINGS_FIELD_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        for model in apps.get_models():
            fields = encrypted_fields(model)
            if not fields:
                continue
            done, last = 0, 0
            while True:
                rows = list(model._default_manager.filter(pk__gt=last).order_by("pk")[:BATCH])
                if not rows:
                    break
                with transaction.atomic():
                    for row in rows:
                        # Reading decrypts with any key; saving encrypts with the newest.
                        row.save(update_fields=fields)
                done += len(rows)
                last = rows[-1].pk
            self.stdout.write(f"{model._meta.label}: {done} rows re-encrypted")
        # Then what is keyed by the field keys without being encrypted (search indexes).
        for rebuild in rotation_followers():
            self.stdout.write(rebuild())
