"""The retention schedule (P12): each kind of data is deleted when its period ends.

Apps declare a rule for each kind of data with a retention period next to its data-map
entry; one scheduled job applies them all, and `tidings retention --dry-run` shows what
would go and why without deleting anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from tidings.core import datamap
from tidings.core.datamap import Erasure, plain

# Rows deleted per transaction: short locks, flat memory, resumable after a crash.
BATCH = 5000


@dataclass(frozen=True)
class Rule:
    name: str
    # Why the rows go, in the words of the policy ("kept for 30 days").
    why: Callable[[], str]
    # The rows whose period has ended at `now`.
    expired: Callable[[datetime], models.QuerySet[Any]]
    # Optional work before deleting (aggregating events into counts, say).
    before_delete: Callable[[models.QuerySet[Any]], None] | None = None
    # For data that deletes itself its own way (the audit log): called instead of the
    # batched delete, returns how many rows went.
    remove: Callable[[datetime], int] | None = None


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    count: int


_rules: dict[str, Rule] = {}


def register(
    name: str,
    *,
    why: Callable[[], str],
    expired: Callable[[datetime], models.QuerySet[Any]],
    before_delete: Callable[[models.QuerySet[Any]], None] | None = None,
    remove: Callable[[datetime], int] | None = None,
) -> Rule:
    rule = Rule(name=name, why=why, expired=expired, before_delete=before_delete, remove=remove)
    _rules[name] = rule
    return rule


def _legal_hold_rule(entry: datamap.Entry) -> Rule:
    """What the erasure job kept for a legal reason goes when its own period ends (P14)."""
    manager = entry.model._default_manager
    return Rule(
        name=f"kept for a legal reason: {entry.verbose_name.lower()}",
        why=lambda: f"{entry.verbose_name} of erased accounts are kept {plain(entry.retention)}",
        expired=lambda now: manager.filter(**{f"{entry.keep_until_field}__lte": now}),
    )


def rules() -> list[Rule]:
    held = [
        _legal_hold_rule(e) for e in datamap.entries() if e.erase == Erasure.KEEP_FOR_LEGAL_REASON
    ]
    return sorted([*_rules.values(), *held], key=lambda r: r.name)


def apply(rule: Rule, *, now: datetime | None = None, dry_run: bool = False) -> Outcome:
    """Delete what `rule` says has expired (or only count it, when `dry_run`)."""
    now = now or timezone.now()
    qs = rule.expired(now)
    if dry_run:
        return Outcome(rule, qs.count())
    if rule.remove is not None:
        return Outcome(rule, rule.remove(now))
    deleted = 0
    while True:
        ids = list(rule.expired(now).values_list("pk", flat=True)[:BATCH])
        if not ids:
            return Outcome(rule, deleted)
        batch = qs.model._default_manager.filter(pk__in=ids)
        with transaction.atomic():
            if rule.before_delete is not None:
                rule.before_delete(batch)
            batch.delete()
        deleted += len(ids)


def apply_all(*, now: datetime | None = None, dry_run: bool = False) -> list[Outcome]:
    now = now or timezone.now()
    return [apply(rule, now=now, dry_run=dry_run) for rule in rules()]


def run(name: str, *, now: datetime | None = None) -> int:
    rule = next(r for r in rules() if r.name == name)
    return apply(rule, now=now).count
