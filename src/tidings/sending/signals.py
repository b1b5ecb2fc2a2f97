"""Provider webhooks: anymail verifies the request (basic auth, signatures) and sends
the `tracking` signal; a forged request never gets here."""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import tracking
from django.dispatch import receiver

from tidings.sending.bounces import handle_tracking_event

log = logging.getLogger(__name__)


@receiver(tracking)
def on_tracking_event(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    outcome = handle_tracking_event(event)
    log.info("%s webhook %s: %s", esp_name, event.event_type, outcome)
