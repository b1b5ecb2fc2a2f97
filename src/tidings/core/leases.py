"""Leases of long jobs (exports, archives): a job holds its row's `lease_until` while it
works and renews it as it goes, so a worker killed mid-way is noticed within one lease,
not within the longest a job could ever take, and the recovery sweep runs it again.

Renewing is one UPDATE, done at most every third of the lease; a job that finds its
lease was taken over (the row no longer says it holds it) stops."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone


def lease_length() -> timedelta:
    """Short enough that a killed worker's job is picked up again within minutes
    (TIDINGS_JOB_LEASE_SECONDS)."""
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


class LeaseLost(RuntimeError):
    """Another worker took the job over (this one was too slow, or presumed dead)."""


class Lease:
    """The lease of one row of `model` (a job with `lease_until`), renewed by `beat`."""

    def __init__(self, model: type[models.Model], pk: int) -> None:
        self.rows = model._default_manager.filter(pk=pk)
        self.length = length = lease_length()
        self.until = timezone.now() + length
        self._next_renewal = time.monotonic() + length.total_seconds() / 3

    def beat(self) -> None:
        """Renew the lease if a third of it has passed; call it after each batch."""
        if time.monotonic() < self._next_renewal:
            return
        held, self.until = self.until, timezone.now() + self.length
        if not self.rows.filter(lease_until=held).update(lease_until=self.until):
            raise LeaseLost("the job's lease was taken over")
        self._next_renewal = time.monotonic() + self.length.total_seconds() / 3


def remove_partial_files(directory: Path, prefix: str) -> int:
    """Delete what a killed run of a job left (`<prefix>*.part` files and their work
    folders): they may hold personal data, and nothing points at them."""
    removed = 0
    for leftover in directory.glob(f"{prefix}*.part*"):
        if leftover.is_dir():
            for inner in leftover.glob("*"):
                inner.unlink()
            leftover.rmdir()
        else:
            leftover.unlink(missing_ok=True)
        removed += 1
    return removed
