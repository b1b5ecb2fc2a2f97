from celery import shared_task

from tidings.billing import services


@shared_task
def retry_vies_checks() -> int:
    return services.retry_vies_checks()
