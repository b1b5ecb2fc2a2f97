from celery import shared_task

from tidings.breaches import services


@shared_task
def escalate_breach_clocks() -> int:
    """Mail the privacy officers as an incident's 72-hour clock runs down (P33)."""
    return services.escalate_clocks()
