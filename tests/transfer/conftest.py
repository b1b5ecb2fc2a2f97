"""Helpers for the import and export tests: upload bytes, map, state a basis, run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from tidings.audience.models import MailingList
from tidings.transfer import importer, services, tasks
from tidings.transfer.models import ImportJob, transfer_path


@pytest.fixture(autouse=True)
def _transfer_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.TRANSFER_DIR = tmp_path / "transfer"


@pytest.fixture
def no_worker(monkeypatch):  # type: ignore[no-untyped-def]
    """Queued jobs stay queued (no eager run on commit): the test runs them itself."""

    queued: list[int] = []
    monkeypatch.setattr(tasks.run_import_task, "delay", queued.append)
    monkeypatch.setattr(tasks.run_export_task, "delay", queued.append)
    return queued


@pytest.fixture
def newsletter(customer):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=customer.account, name="Newsletter")


def upload(user, content: bytes, name: str = "contacts.csv") -> ImportJob:  # type: ignore[no-untyped-def]
    """Upload and analyse, as the worker does after the upload's commit."""
    job = services.receive_upload(user.account, by=user, name=name, chunks=[content])
    return services.analyse_upload(job.pk) or job


def prepare(
    user,  # type: ignore[no-untyped-def]
    content: bytes,
    *,
    name: str = "contacts.csv",
    mode: str = "add",
    lists: Sequence[MailingList] = (),
    targets: list[str] | None = None,
    types: list[str] | None = None,
    basis: str = "consent",
) -> ImportJob:
    """Upload, map (suggested mapping and guessed types unless given) and state the
    basis: a queued job."""
    job = upload(user, content, name)
    services.set_mapping(
        job,
        targets=targets or job.mapping,
        types=types,
        mode=mode,
        list_ids=[m.pk for m in lists],
    )
    return services.start_import(
        job,
        by=user,
        legal_basis=basis,
        basis_date=dt.date(2024, 3, 1),
        statement="Signed up at our shop's checkout with the newsletter box ticked.",
    )


def run(job: ImportJob, **kwargs) -> ImportJob:  # type: ignore[no-untyped-def]
    result = importer.run_import(job.pk, **kwargs)
    job.refresh_from_db()
    assert result is None or result.pk == job.pk
    return job


def report_rows(job: ImportJob) -> list[list[str]]:
    import csv

    with open(transfer_path(job.report_file), encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))[1:]
