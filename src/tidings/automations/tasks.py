"""Jobs of automations, run by the worker."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from tidings.automations import engine, splittests, webhooks


@shared_task(acks_late=True)
def run_automations() -> dict[str, int]:
    """The scheduler's pass (beat, every minute), and the A/B tests whose wait is over:
    idempotent, so a second beat or a re-delivered task does nothing twice."""
    outcome = engine.run()
    decided = splittests.decide_due()
    return {
        "entered": outcome.entered,
        "left": outcome.left,
        "queued": outcome.queued,
        "ab_tests_decided": decided,
    }


@shared_task(acks_late=True)
def run_steps(ids: list[int], at: str) -> dict[str, int]:
    """The due steps of these enrolments, those still due at `at` (an ISO moment: the
    scheduler's pass), queued by the pass (`engine.queue_due`): idempotent, so a job
    queued twice or re-delivered does nothing twice."""
    taken, steps = engine.run_due(datetime.fromisoformat(at), ids=ids)
    return {"taken": taken, "steps": steps}


@shared_task(acks_late=True)
def run_webhooks() -> dict[str, int]:
    """The webhooks' pass (beat, every minute): new events written, due ones sent."""
    return {"written": webhooks.scan(), "delivered": webhooks.deliver_due()}


@shared_task(acks_late=True)
def deliver_webhooks() -> int:
    """The due webhook messages sent now (a test message asked for in a page or the API)."""
    return webhooks.deliver_due()
