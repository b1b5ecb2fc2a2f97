from celery import shared_task

from tidings.core.mail import deliver_now


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def deliver_mail(*, subject: str, body: str, to: list[str]) -> None:
    """Send one of Tidings's own mails; SMTP hiccups retry with backoff."""
    deliver_now(subject, body, to)
