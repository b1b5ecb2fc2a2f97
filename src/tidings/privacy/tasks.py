import logging

from celery import shared_task

from tidings.core import retention
from tidings.privacy import office, portability, services

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def erase_account_task(account_id: int, requested_by: str = "customer: erase now") -> None:
    """Erase one closed account; safe to run again after a crash."""
    services.erase_account(account_id, requested_by=requested_by)


@shared_task(acks_late=True)
def build_account_export_task(export_id: int) -> None:
    """Build the archive of all of one account's data (P20)."""
    portability.build_account_export(export_id)


@shared_task
def resume_stalled_archives() -> list[int]:
    """Build again the archives whose worker died or whose job was lost."""
    return portability.resume_stalled_archives()


@shared_task
def erase_due_accounts() -> int:
    """Erase every closed account whose grace period is over (P13)."""
    due = services.accounts_due_for_erasure()
    for account_id in due:
        services.erase_account(account_id)
    for account_id in services.overdue_erasures():
        log.error("account %s is past its erasure deadline", account_id)
    return len(due)


@shared_task
def delete_expired_legal_holds() -> dict[str, int]:
    """Delete invoices (and anything else held for a legal reason) past their period (P14)."""
    return services.delete_expired_legal_holds()


@shared_task
def apply_retention() -> dict[str, int]:
    """The daily retention run: every rule of the schedule (P12, P14)."""
    return {o.rule.name: o.count for o in retention.apply_all()}


@shared_task
def escalate_due_requests() -> int:
    """Remind the privacy officers of requests due within a week or overdue."""
    return office.escalate_due_requests()


@shared_task
def tell_customers_of_ended_withholdings() -> int:
    """Tell customers of the disclosures whose prohibition on telling has ended (P25)."""
    return office.tell_customers_of_ended_withholdings()
