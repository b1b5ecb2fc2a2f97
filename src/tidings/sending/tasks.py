"""Celery entry points of the sending engine: a few lines each, the work is in engine."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_ready
from django.urls import get_resolver
from django.utils import timezone

from tidings.core import retention
from tidings.sending import (
    bounces,
    checklist,
    dispatcher,
    domains,
    engine,
    lifecycle,
    postman,
    spamassassin,
    tracking,
)


@worker_ready.connect  # the process that runs tasks with `--pool solo`
@worker_process_init.connect  # each process of a prefork pool
def load_url_patterns(**_: Any) -> None:
    """Every message carries links made with reverse(): load the URL patterns (every
    app's views, most of a second) when a worker starts, not before the first message
    of the first campaign it sends."""
    get_resolver().reverse_dict  # noqa: B018


@shared_task(acks_late=True)
def dispatch_campaign(campaign_id: int, after: int = 0) -> int:
    """Queue the batches of a started campaign (idempotent), a few at a time: the rest
    (deliveries above the last id queued) goes to a new dispatch task behind them."""
    return dispatcher.dispatch(campaign_id, after=after, limit=dispatcher.DISPATCH_STEP)


@shared_task(acks_late=True)
def materialise_campaign(campaign_id: int) -> int:
    """Fix the rest of a started campaign's recipients, then dispatch them."""
    return lifecycle.materialise_rest(campaign_id)


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_batch(self: Task, campaign_id: int, lo: int, hi: int) -> dict[str, Any]:
    """Send one id range of a campaign; re-delivery is harmless (claims are
    conditional). Temporary failures come back with backoff."""
    result = engine.send_batch(campaign_id, lo, hi)
    # Eager runs (tests, `tidings up` without a broker) leave retries to the sweep.
    if result.retry_at is not None and not self.request.is_eager:
        countdown = max(1, int((result.retry_at - timezone.now()).total_seconds()) + 1)
        raise self.retry(countdown=countdown)
    return {"sent": result.sent, "failed": result.failed, "skipped": result.skipped}


@shared_task
def recover_stalled() -> dict[str, int]:
    """Every minute: claims of dead workers, lost batches and messages, finished
    campaigns."""
    outcome = engine.recover_stalled()
    messages = postman.recover()
    return {**outcome.__dict__, "messages_unknown": messages.unknown, "messages": messages.requeued}


@shared_task
def record_tracking_events() -> int:
    """Every few seconds: the opens and clicks the stream holds, written in batches
    (tracking.drain: resumable, nothing written twice)."""
    return tracking.drain()


@shared_task
def start_due_campaigns() -> list[int]:
    """Every minute: scheduled campaigns whose time has come."""
    return lifecycle.start_due_campaigns()


@shared_task
def read_bounce_mailbox() -> int:
    """Every few minutes: DSNs in the bounce mailbox (TIDINGS_BOUNCE_MAILBOX)."""
    return bounces.read_bounce_mailbox()


@shared_task
def fold_tracking_events() -> int:
    """Daily: per-contact opens and clicks past TIDINGS_TRACKING_DAYS become counts."""
    return retention.run("tracking events")


@shared_task(acks_late=True)
def deliver(mail_id: int) -> dict[str, int]:
    """Send one posted message (and the next due ones of its relay): core.mail.post."""
    return postman.deliver(mail_id).__dict__


@shared_task
def recheck_sending_domains() -> int:
    """Hourly: customers' sending domains due for a check; a record gone loses the proof."""
    return domains.recheck_domains()


@shared_task(acks_late=True, time_limit=3 * spamassassin.TIMEOUT)
def score_campaign_spam(campaign_id: int) -> dict[str, Any] | None:
    """Score a campaign's message with SpamAssassin for its send page's checklist."""
    return checklist.score_spam(campaign_id)
