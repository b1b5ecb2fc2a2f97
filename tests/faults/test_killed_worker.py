"""A worker SIGKILLed in the middle of each long job: an export, an "all my data"
archive, an import. Real `celery worker` processes on the suite's Redis; the job's
lease runs out, the recovery sweep (beat's, every five minutes in production) gives it
to a second worker, and the job finishes with every row once and nothing half-written
left on disk. (The killed campaign and the broker restarted mid-campaign are in
tests/sending/test_exactly_once.py; the killed erasure in
tests/privacy/test_erasure_resumes.py.)"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tests.sending.workers import (
    PrivatePostgres,
    PrivateRedis,
    Workers,
    attempt,
    cut_every_other_connection,
    wait_until,
)
from tidings.audience.models import Contact, MailingList, Subscription
from tidings.core import jobs
from tidings.privacy import portability
from tidings.privacy.models import AccountExport
from tidings.transfer import services as transfer
from tidings.transfer.models import ExportJob, ImportJob, transfer_path

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CONTACTS = 60_000
LEASE = 3  # seconds: a killed worker's job is taken over quickly
RUN_IMPORT = "tidings.transfer.tasks.run_import_task"
SWEEP_TRANSFERS = "tidings.transfer.tasks.resume_stalled_transfers"


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    """Jobs the services queue are kept here, for the test to hand to its workers."""
    held: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(jobs, "send_now", lambda name, *args, **kw: held.append((name, args)))
    return held


@pytest.fixture
def workers() -> Iterator[Workers]:
    # The suite's own Redis database (emptied here): a fixed one would collide with
    # other runs on the same Redis.
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    pool = Workers(
        django_settings.REDIS_URL, lease=LEASE, streams=1,
        extra={"TIDINGS_JOB_LEASE_SECONDS": str(LEASE)},
    )  # fmt: skip
    try:
        yield pool
    finally:
        pool.stop_all()


def many_contacts(account) -> MailingList:  # type: ignore[no-untyped-def]
    newsletter = MailingList.objects.create(account=account, name="Everyone")
    now = timezone.now()
    Contact.objects.bulk_create(
        [
            Contact(account=account, email=f"r{i}@example.net", name=f"Reader {i}", basis_at=now)
            for i in range(CONTACTS)
        ],
        batch_size=5000,
    )
    return newsletter


def killed_mid_way_then_recovered(
    workers: Workers,
    job: tuple[str, tuple[object, ...]],
    *,
    mid_way: Callable[[], bool],
    finished: Callable[[], bool],
    sweep: str,
) -> None:
    first = workers.start("first")
    workers.client.send_task(job[0], args=list(job[1]))
    wait_until(mid_way, 120)
    workers.kill(first)  # the worker and its pool, as if the machine died
    assert not finished(), "the job finished before the kill"
    time.sleep(LEASE + 1)  # its lease runs out
    workers.start("second")
    wait_until(finished, 240, every=lambda: workers.client.send_task(sweep))


def leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if ".part" in p.name]


def test_an_export_whose_worker_is_killed_is_built_again_whole(customer, queued, workers):
    many_contacts(customer.account)
    job = transfer.start_export(customer.account, by=customer, fmt="csv")
    exports = transfer_path("exports")

    def mid_way() -> bool:
        job.refresh_from_db()
        return job.status == ExportJob.Status.RUNNING and any(
            p.stat().st_size > 0 for p in leftovers(exports)
        )

    def finished() -> bool:
        job.refresh_from_db()
        return job.status == ExportJob.Status.DONE

    killed_mid_way_then_recovered(
        workers, queued[-1], mid_way=mid_way, finished=finished,
        sweep=SWEEP_TRANSFERS,
    )  # fmt: skip
    with open(transfer_path(job.file), encoding="utf-8-sig", newline="") as handle:
        emails = [row["email"] for row in csv.DictReader(handle)]
    assert job.rows == CONTACTS and sorted(emails) == sorted(
        f"r{i}@example.net" for i in range(CONTACTS)
    )
    assert leftovers(exports) == [], "the killed run's half-written file is still there"


def test_an_archive_whose_worker_is_killed_is_built_again_whole(customer, queued, workers):
    many_contacts(customer.account)
    export = portability.request_account_export(customer.account, by=customer, fmt="csv")
    folder = portability.account_archive_dir(customer.account_id)

    def mid_way() -> bool:
        export.refresh_from_db()
        return export.status == AccountExport.Status.RUNNING and bool(
            folder.exists() and leftovers(folder)
        )

    def finished() -> bool:
        export.refresh_from_db()
        return export.status == AccountExport.Status.DONE

    killed_mid_way_then_recovered(
        workers, queued[-1], mid_way=mid_way, finished=finished,
        sweep="tidings.privacy.tasks.resume_stalled_archives",
    )  # fmt: skip
    with zipfile.ZipFile(portability.archive_path(export.file)) as archive:
        contacts = archive.read("contacts.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(contacts)))
    assert len(rows) == len({r["email"] for r in rows}) == CONTACTS
    assert export.counts["contacts"] == CONTACTS
    assert leftovers(folder) == [], "the killed run's half-written archive is still there"


def big_import(customer) -> tuple[ImportJob, MailingList, tuple[str, tuple[object, ...]]]:  # type: ignore[no-untyped-def]
    """A mapped CSV of CONTACTS rows with a stated basis, its job held for the workers."""
    newsletter = MailingList.objects.create(account=customer.account, name="Imported")
    content = "email,name\n" + "".join(f"i{i}@example.org,Person {i}\n" for i in range(CONTACTS))
    job = transfer.receive_upload(
        customer.account, by=customer, name="big.csv", chunks=[content.encode()]
    )
    job = transfer.analyse_upload(job.pk) or job  # the worker's first step, done here
    transfer.set_mapping(job, targets=job.mapping, mode="add", list_ids=[newsletter.pk])
    transfer.start_import(
        job, by=customer, legal_basis="consent", basis_date=timezone.now().date(),
        statement="Ticked the newsletter box at checkout.",
    )  # fmt: skip
    return job, newsletter, (RUN_IMPORT, (job.pk,))


def import_mid_way(job: ImportJob) -> Callable[[], bool]:
    def mid_way() -> bool:
        job.refresh_from_db()
        return job.status == ImportJob.Status.RUNNING and job.rows_done > 0

    return mid_way


def import_finished(job: ImportJob) -> Callable[[], bool]:
    def finished() -> bool:
        job.refresh_from_db()
        return job.status == ImportJob.Status.DONE

    return finished


def assert_each_row_once(job: ImportJob, customer, newsletter: MailingList) -> None:  # type: ignore[no-untyped-def]
    assert job.counts["added"] == CONTACTS, job.counts
    assert Contact.objects.filter(account=customer.account).count() == CONTACTS
    assert Subscription.objects.filter(mailing_list=newsletter).count() == CONTACTS


def test_an_import_whose_worker_is_killed_resumes_and_writes_each_row_once(
    customer, queued, workers
):
    job, newsletter, task = big_import(customer)
    killed_mid_way_then_recovered(
        workers, task, mid_way=import_mid_way(job), finished=import_finished(job),
        sweep=SWEEP_TRANSFERS,
    )  # fmt: skip
    assert_each_row_once(job, customer, newsletter)


def test_an_import_whose_database_connections_are_cut_finishes_each_row_once(
    customer, queued, workers
):
    job, newsletter, task = big_import(customer)
    workers.start("only")
    workers.client.send_task(task[0], args=list(task[1]))
    wait_until(import_mid_way(job), 120)
    assert cut_every_other_connection() > 0
    assert not import_finished(job)(), "the import finished before the cut"
    time.sleep(LEASE + 1)
    wait_until(import_finished(job), 240, every=lambda: workers.client.send_task(SWEEP_TRANSFERS))
    assert_each_row_once(job, customer, newsletter)


def test_an_import_survives_its_broker_restarting_mid_way(customer, queued):
    job, newsletter, task = big_import(customer)
    broker = PrivateRedis()
    pool = Workers(
        broker.url, lease=LEASE, streams=1, extra={"TIDINGS_JOB_LEASE_SECONDS": str(LEASE)}
    )
    try:
        first = pool.start("first")
        pool.client.send_task(task[0], args=list(task[1]))
        wait_until(import_mid_way(job), 120)
        broker.restart()  # the queue is gone; the worker loses its broker mid-job
        pool.kill(first)  # and then its machine, before it could finish
        assert not import_finished(job)(), "the import finished before the restart"
        time.sleep(LEASE + 1)
        pool.start("second")
        wait_until(
            import_finished(job), 240,
            every=lambda: attempt(pool.client.send_task, SWEEP_TRANSFERS),
        )  # fmt: skip
    finally:
        pool.stop_all()
        broker.stop()
    assert_each_row_once(job, customer, newsletter)


def test_an_import_survives_its_postgresql_crashing_mid_way(customer, queued):
    """The workers' PostgreSQL (a private server holding a copy of the test's data) is
    stopped as a crash would stop it, mid-import, and started again."""
    job, newsletter, task = big_import(customer)
    database = PrivatePostgres(connection.settings_dict)
    broker = PrivateRedis()
    pool = Workers(
        broker.url, lease=LEASE, streams=1,
        extra={"TIDINGS_JOB_LEASE_SECONDS": str(LEASE), "DATABASE_URL": database.url},
    )  # fmt: skip

    def state() -> tuple[str, int]:
        sql = "SELECT status, rows_done FROM transfer_importjob WHERE id = %s"
        status, rows_done = database.query(sql, job.pk)[0]
        return str(status), int(rows_done)  # type: ignore[call-overload]

    try:
        pool.start("only")
        pool.client.send_task(task[0], args=list(task[1]))
        wait_until(lambda: state()[0] == "running" and state()[1] > 0, 120)
        database.crash_and_restart()
        assert state()[0] != "done", "the import finished before the crash"
        wait_until(lambda: state()[0] == "done", 240, every=lambda: attempt(
            pool.client.send_task, SWEEP_TRANSFERS
        ))  # fmt: skip
        (counts,) = database.query("SELECT counts FROM transfer_importjob WHERE id = %s", job.pk)[0]
        contacts = database.query(
            "SELECT count(*) FROM audience_contact WHERE account_id = %s", customer.account_id
        )[0][0]
        subscriptions = database.query(
            "SELECT count(*) FROM audience_subscription WHERE mailing_list_id = %s", newsletter.pk
        )[0][0]
    finally:
        pool.stop_all()
        broker.stop()
        database.remove()
    assert counts["added"] == CONTACTS, counts  # type: ignore[index]
    assert contacts == subscriptions == CONTACTS
