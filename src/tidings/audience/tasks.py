"""Celery entry points of the audience: a few lines each, the work is in the services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tidings.accounts.models import Account
from tidings.audience import bulk, counters, growth, restriction, rights
from tidings.audience.selectors import ContactSearch


@shared_task
def bulk_contacts(*, account_id: int, search: dict[str, Any], action: str, argument: str) -> int:
    """A bulk action on every contact of a search, however many (set-based)."""
    account = Account.objects.get(pk=account_id)
    contacts = ContactSearch.from_dict(search).contacts(account)
    return bulk.apply(account, contacts, action, argument).changed


@shared_task
def escalate_overdue_contact_requests() -> int:
    """Mail each account's users about their contacts' overdue requests (once a day each)."""
    return rights.escalate_overdue_requests()


@shared_task
def lift_due_restrictions() -> int:
    """Hourly: contacts whose announced end of a restriction of processing has come."""
    return restriction.lift_due_restrictions()


@shared_task
def compact_list_counts() -> int:
    """Hourly: fold the lists' counter deltas and their days' growth rows (one per
    statement on PostgreSQL)."""
    return counters.compact() + growth.compact()


@shared_task
def recount_lists() -> int:
    """Count every list's subscriptions again and repair the counters; returns how many
    lists were wrong (0 unless the triggers were off)."""
    return len(counters.recount())
