"""Background jobs enqueued by name, after the commit (Zulip's `queue_json_publish`).

A service that wants work done later names the task ("tidings.sending.tasks.deliver")
instead of importing its module, so nothing below the delivery layer imports a layer
above it, and the job is queued only when the change that asked for it is committed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task `name` with these arguments once the current transaction commits
    (at once outside a transaction). Eager runs (tests, no broker) run it in this
    process then; a job with a countdown is left to the recovery sweeps there, since an
    eager run cannot wait."""
    transaction.on_commit(lambda: send_now(name, *args, countdown=countdown, **kwargs))


def send_now(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task `name` now, whatever the transaction (for tasks that requeue
    themselves, and recovery sweeps)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if countdown:
            log.debug("eager run: %s with a countdown is left to the sweep", name)
            return
        if name not in current_app.tasks:
            current_app.loader.import_default_modules()  # every app's tasks module
        current_app.tasks[name].delay(*args, **kwargs)
        return
    current_app.send_task(name, args=args, kwargs=kwargs, countdown=countdown)
