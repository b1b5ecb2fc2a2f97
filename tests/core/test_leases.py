"""Long jobs hold a lease they renew as they go (core.leases). A worker that finds its
lease taken over stops, and leaves the new holder's lease as it is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.core import jobs
from tidings.core.leases import Lease, LeaseLost
from tidings.transfer import services as transfer
from tidings.transfer.models import ExportJob, transfer_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "send_now", lambda name, *args, **kw: None)


def test_a_lease_is_renewed_while_held_and_refused_once_taken_over(customer, held):
    job = transfer.start_export(customer.account, by=customer, fmt="csv")
    lease = Lease(ExportJob, job.pk)
    ExportJob.objects.filter(pk=job.pk).update(lease_until=lease.until)
    first = lease.until
    lease._next_renewal = 0  # a third of the lease has passed
    lease.beat()
    assert lease.until > first
    assert ExportJob.objects.get(pk=job.pk).lease_until == lease.until

    ExportJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(hours=1))
    lease._next_renewal = 0
    with pytest.raises(LeaseLost):
        lease.beat()


def test_an_export_whose_lease_was_taken_over_stops_and_keeps_the_new_holders_lease(
    customer, held, monkeypatch
):
    job = transfer.start_export(customer.account, by=customer, fmt="csv")
    theirs = timezone.now() + timedelta(hours=1)

    def taken_over_mid_way(contacts, fmt, path, *, heartbeat):  # type: ignore[no-untyped-def]
        path.write_text("half of it")
        ExportJob.objects.filter(pk=job.pk).update(lease_until=theirs)  # another worker
        heartbeat.__self__._next_renewal = 0
        heartbeat()

    monkeypatch.setattr(transfer, "export_contacts", taken_over_mid_way)
    with pytest.raises(LeaseLost):
        transfer.run_export(job.pk)
    job.refresh_from_db()
    assert job.lease_until == theirs and job.status == ExportJob.Status.RUNNING
    assert not [p for p in transfer_path("exports").glob("*") if ".part" in p.name]
