"""Provider webhooks: anymail verifies the request (basic auth, signatures) and sends
the `tracking` signal; a forged request never gets here. And a worker that starts makes
its first render process (campaigns.renderpool) before it takes work, so that a
campaign's first message does not wait for one to start."""

from __future__ import annotations

import logging
import threading
from typing import Any

from anymail.signals import tracking
from celery.signals import worker_process_init, worker_ready
from django.db.models.signals import post_delete
from django.dispatch import receiver

from tidings.campaigns.models import Campaign
from tidings.sending.bounces import handle_tracking_event
from tidings.sending.mailer import start_render_process
from tidings.sending.tracking import forget_click_checks

log = logging.getLogger(__name__)


@receiver(tracking)
def on_tracking_event(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    outcome = handle_tracking_event(event)
    log.info("%s webhook %s: %s", esp_name, event.event_type, outcome)


@receiver(post_delete, sender=Campaign)
def on_campaign_deleted(sender: Any, instance: Campaign, **kwargs: Any) -> None:
    forget_click_checks(instance.pk)


@worker_ready.connect
def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    # A worker whose tasks run in its own process (solo, threads) is ready when it can
    # render: its render process starts before it takes work. A prefork worker's
    # children start theirs below.
    pool = type(getattr(sender, "pool", None)).__module__
    if pool.endswith((".solo", ".thread")):
        start_render_process()


@worker_process_init.connect
def on_worker_process_init(**kwargs: Any) -> None:
    # In the background: Celery gives a prefork child a few seconds to start.
    threading.Thread(target=start_render_process, name="render-warm", daemon=True).start()
