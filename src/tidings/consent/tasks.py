"""The consent app's scheduled work."""

from __future__ import annotations

from celery import shared_task

from tidings.consent import services


@shared_task
def flush_page_views() -> int:
    """Every few seconds: the page views counted in Redis, written exactly once
    (services.flush_page_views)."""
    return services.flush_page_views()
