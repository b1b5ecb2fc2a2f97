from celery import shared_task

from tidings.desk import followups


@shared_task
def send_due_followups() -> int:
    return followups.send_due()
