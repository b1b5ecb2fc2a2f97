"""The Celery application: the worker, the scheduler and every task share it."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")

app = Celery("tidings")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Erasure must finish by day 60 (P13): running every hour leaves ample margin.
    "erase-due-accounts": {"task": "tidings.privacy.tasks.erase_due_accounts", "schedule": 3600.0},
    "delete-expired-legal-holds": {
        "task": "tidings.privacy.tasks.delete_expired_legal_holds",
        "schedule": crontab(minute=17, hour=3),
    },
    "purge-unconfirmed-signups": {
        "task": "tidings.accounts.tasks.purge_unconfirmed_signups",
        "schedule": crontab(minute=27, hour=3),
    },
    "purge-old-outbox": {
        "task": "tidings.outbox.tasks.purge_old_messages",
        "schedule": crontab(minute=37, hour=3),
    },
}
