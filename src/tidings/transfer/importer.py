"""The import job: read an uploaded file in chunks and write its contacts, resumably.

Each chunk of CHUNK_ROWS records is written in one transaction that also moves the job's
checkpoint (records done, counts, size of the rejected-rows report). A job killed at any
moment is re-run from its last checkpoint: nothing is lost, nothing is written twice.

Rows are refused for what the file says (no or invalid address, a status or opt-out
column saying the person left, a second row for the same address) and for what the
account knows (suppressed addresses, contacts who unsubscribed, bounced, complained or
were blocklisted: an import never makes them active). Each refusal is a line of the
report, with the row's line number and the reason.

Contacts written by this job carry the job's `stamp` as `updated_at`: a later row whose
address meets a contact with that stamp repeats an address earlier in the file. So
duplicates across chunks are found by the unique index, with no set of a million
addresses kept in memory.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tidings.accounts.models import Account
from tidings.audience import attribute_types
from tidings.audience.models import MailingList
from tidings.audience.services import convert_existing
from tidings.core.leases import lease_length
from tidings.core.spreadsheets import csv_writer
from tidings.transfer import mapping
from tidings.transfer.errors import FileRejected, ImportInterrupted, ProcessingStopped
from tidings.transfer.models import ImportJob, transfer_path
from tidings.transfer.readers import count_records, read_records
from tidings.transfer.rows import Contact, Refusal, RowReader
from tidings.transfer.writers import (
    DUPLICATES,
    ChunkResult,
    Writer,
    drop_unused_proof,
    import_proof,
    writer_for,
)

log = logging.getLogger(__name__)

# Records per transaction: large enough that per-statement costs vanish, small enough
# that a chunk's rows (kept for the report) stay a few megabytes.
CHUNK_ROWS = 20_000
REPORT_HEADER = ["line", "reason"]
# Allocations between two collections of the youngest generation during a job (the
# default is 700): see _rare_collections.
GC_THRESHOLD = 50_000


@dataclass
class Chunk:
    """Records [start, end) of the file, read and checked."""

    start: int
    end: int
    contacts: list[Contact] = field(default_factory=list)
    # seq -> (line, cells) of every record that may still be refused by the database.
    rows: dict[int, tuple[str, list[Any]]] = field(default_factory=dict)
    # (seq, line, reason, kind, cells) of the records refused by the file alone.
    refused: list[tuple[int, str, str, str, list[Any]]] = field(default_factory=list)


def run_import(job_id: int, *, stop_after_chunks: int | None = None) -> ImportJob | None:
    """Run (or resume) one import; None when another worker holds it or it is over.

    `stop_after_chunks` raises ImportInterrupted after that many committed chunks: the
    tests use it to kill a job half-way and prove that the re-run resumes."""
    job = _claim(job_id)
    if job is None:
        return None
    try:
        _run(job, stop_after_chunks)
    except (FileRejected, ProcessingStopped) as error:
        _fail(job, str(error))
    except (ImportInterrupted, DatabaseError):
        raise  # resumable: the job stays running and is taken up again
    except Exception:
        log.exception("import %s failed", job_id)
        _fail(job, "The import stopped on an internal error; the rows imported so far stay.")
        raise
    finally:
        ImportJob.objects.filter(pk=job_id).update(lease_until=None)
    job.refresh_from_db()
    return job


def _claim(job_id: int) -> ImportJob | None:
    now = timezone.now()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
            return None
        if job.lease_until is not None and job.lease_until > now:
            return None
        if not job.account.may_process:
            # Closing an account stops every processing at once (P21), so does a
            # restriction (P18).
            job.status = ImportJob.Status.FAILED
            job.error = (
                "The account was closed: the import stopped."
                if not job.account.is_processing_allowed
                else "Processing is restricted for this account: the import stopped."
            )
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at"])
            return None
        job.lease_until = now + lease_length()
        if job.status == ImportJob.Status.QUEUED:
            job.status = ImportJob.Status.RUNNING
            job.started_at = now
        # Fixed at the first start and kept on resume: it marks this job's contacts.
        job.stamp = job.stamp or now
        job.save(update_fields=["lease_until", "status", "started_at", "stamp"])
    return job


def _fail(job: ImportJob, message: str) -> None:
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED,
        error=message,
        finished_at=now,
        expires_at=now + timedelta(days=settings.TRANSFER_FILE_DAYS),
    )
    _remove(job.upload_file)


def _run(job: ImportJob, stop_after_chunks: int | None) -> None:
    upload = transfer_path(job.upload_file)
    info = job.file_info
    if job.rows_total is None:
        # Read the whole file once before writing anything: a broken or wrongly
        # encoded file fails here and changes nothing.
        job.rows_total = count_records(upload, info)
        ImportJob.objects.filter(pk=job.pk).update(rows_total=job.rows_total)
    lists = list(
        MailingList.objects.filter(account_id=job.account_id, pk__in=job.list_ids).values_list(
            "pk", flat=True
        )
    )
    # What the customer stated for the whole file, once, referenced by every
    # subscription the import writes (writers.py).
    proof = import_proof(job) if lists else None
    writer = writer_for(connection.vendor, job, lists, proof)
    # Values of typed attributes are stored in their type's form; a value that does not
    # fit refuses its row, with the reason in the report. The values other contacts
    # already held for an attribute this import declared are brought to that form
    # first (checked on the mapping page; converting twice changes nothing).
    declared = attribute_types.types_of(job.account_id)
    if job.rows_done == 0:
        for key in job_attribute_keys(job):
            kind = declared.get(key, attribute_types.TEXT)
            if kind != attribute_types.TEXT:
                convert_existing(job.account_id, key, kind)
    reader = RowReader(job.columns, job.mapping, job.types, declared)
    with _report(job) as report, _rare_collections():
        checkpoints = _Checkpoints(job, writer, report, stop_after_chunks)
        with closing(_chunks_in_background(job, reader)) as chunks:
            # Other connections cannot see a transaction the job was called in (tests).
            if writer.lanes > 1 and not connection.in_atomic_block:
                _write_in_lanes(checkpoints, chunks, writer.lanes)
            else:
                for number, chunk in enumerate(chunks, start=1):
                    checkpoints.write(chunk, number)
    if proof is not None:
        drop_unused_proof(job)
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE,
        progress=1000,
        finished_at=now,
        expires_at=now + timedelta(days=settings.TRANSFER_FILE_DAYS),
        upload_file="",
    )
    # The upload held the contacts in clear; the database has them now.
    _remove(job.upload_file)


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Python's cycle collector runs less often while the job holds its chunks. Every
    row keeps an object the collector follows (its Contact) until the chunk is written,
    and at the default threshold the full collections walking all of them took a
    quarter of the job's Python time (measured). Reading and writing chunks makes no
    reference cycles to speak of, so little waits longer to be freed."""
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _report:
    """The rejected-rows report, cut back to the checkpoint's size on resume."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job

    def __enter__(self) -> Any:
        job = self.job
        if not job.report_file:
            job.report_file = f"imports/{job.pk}-rejected.csv"
            ImportJob.objects.filter(pk=job.pk).update(report_file=job.report_file)
        path = transfer_path(job.report_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "r+" if path.exists() else "w+"
        self.handle = open(path, mode, encoding="utf-8", newline="")
        self.handle.seek(job.report_size)
        self.handle.truncate()
        if job.report_size == 0:
            self.handle.write("\ufeff")  # so spreadsheets read it as UTF-8
            csv_writer(self.handle).writerow(REPORT_HEADER + list(job.columns))
        return self.handle

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


class _Checkpoints:
    """Writes chunks, each in one transaction that moves the job's checkpoint past it;
    the commits, the counts and the report follow the file's order."""

    def __init__(
        self, job: ImportJob, writer: Writer, report: Any, stop_after_chunks: int | None
    ) -> None:
        self.job = job
        self.writer = writer
        self.report = report
        self.out = csv_writer(report)
        self.counts: dict[str, int] = {k: int(v) for k, v in job.counts.items()}
        self.stop_after_chunks = stop_after_chunks

    def write(
        self,
        chunk: Chunk,
        number: int,
        turn: _Turn | None = None,
        before: _Turn | None = None,
        earlier: frozenset[str] = frozenset(),
    ) -> None:
        """Write the `number`th chunk of this run. With `before`, the chunk just before it
        is being written on another connection: this one commits only after it, and its
        rows whose address is also in that chunk (`earlier`) are written only then, so
        each row meets the audience exactly as it would one chunk after the other, and
        the two transactions never wait for each other's rows."""
        job = self.job
        try:
            if not Account.objects.filter(
                pk=job.account_id, status=Account.Status.ACTIVE, restricted_at__isnull=True
            ).exists():
                raise ProcessingStopped("The account was closed or restricted: the import stopped.")
            now = [c for c in chunk.contacts if c.email not in earlier]
            later = [c for c in chunk.contacts if c.email in earlier]
            with transaction.atomic():
                if turn is not None:
                    turn.take()
                result = self.writer.write(now) if now else ChunkResult()
                if before is not None:
                    before.wait()
                if later:
                    result.add(self.writer.write(later))
                chunk_written(job, result)
                _report_chunk(self.out, chunk, result, self.counts)
                self.report.flush()
                os.fsync(self.report.fileno())
                ImportJob.objects.filter(pk=job.pk).update(
                    rows_done=chunk.end,
                    counts=self.counts,
                    report_size=self.report.tell(),
                    progress=min(999, chunk.end * 1000 // max(job.rows_total or 1, 1)),
                    lease_until=timezone.now() + lease_length(),
                )
        finally:
            if turn is not None:
                turn.held.set()  # also when it failed before taking its lock
        if self.stop_after_chunks is not None and number >= self.stop_after_chunks:
            raise ImportInterrupted(f"stopped after {number} chunks")

    def write_in_lane(
        self, chunk: Chunk, number: int, turn: _Turn, before: _Turn | None, earlier: frozenset[str]
    ) -> None:
        """`write` in a lane's thread, on that thread's own connection."""
        try:
            self.write(chunk, number, turn, before, earlier)
        finally:
            connection.close()


@dataclass
class _Turn:
    """A chunk's place in the order of commits, for the chunk after it to wait on.

    The chunk's transaction holds an advisory lock from its start to its end, and the
    next chunk waits for that lock rather than only in Python: so PostgreSQL sees who
    waits for whom. A cycle through another session (someone who changed a contact of
    this chunk and now waits for one the next chunk updated) is then a deadlock that
    PostgreSQL breaks within a second, not a hang; the import, if it is the one
    stopped, is resumed like any interrupted job."""

    # The two-key form of advisory locks (the audit log uses the one-key form).
    key: tuple[int, int]
    held: threading.Event = field(default_factory=threading.Event)
    ended: Future[None] | None = None

    def take(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", self.key)
        self.held.set()

    def wait(self) -> None:
        """Return once the chunk has committed; raise its error when it did not (this
        chunk is then rolled back too)."""
        self.held.wait()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", self.key)
        self.result()

    def result(self) -> None:
        """Wait for the chunk's task to end; raise its error."""
        assert self.ended is not None  # set when the chunk is handed to a lane
        self.ended.result()


def _write_in_lanes(checkpoints: _Checkpoints, chunks: Iterator[Chunk], lanes: int) -> None:
    """Write `lanes` chunks at once, each on its own connection: PostgreSQL works on one
    core per connection, and its part (upsert, index updates, foreign-key checks) is
    most of an import's time. The first error stops the job; the chunks not committed
    then are rolled back, and a re-run resumes after the last committed one."""
    writing: deque[_Turn] = deque()
    earlier: frozenset[str] = frozenset()
    # Leaving the pool waits for every chunk still being written (committed or rolled
    # back) before the job's lease is let go.
    with ThreadPoolExecutor(lanes, thread_name_prefix=f"import-{checkpoints.job.pk}") as pool:
        for number, chunk in enumerate(chunks, start=1):
            before = writing[-1] if writing else None
            turn = _Turn(key=(checkpoints.job.pk, number))
            turn.ended = pool.submit(
                checkpoints.write_in_lane, chunk, number, turn, before, earlier
            )
            writing.append(turn)
            earlier = frozenset(c.email for c in chunk.contacts)
            if len(writing) == lanes:
                # A lane is free before the next chunk is taken: no more chunks in
                # memory than lanes, plus the reader's one ready and one being read.
                writing.popleft().result()
        while writing:
            writing.popleft().result()


def job_attribute_keys(job: ImportJob) -> list[str]:
    """The attribute names the job's columns are imported as."""
    prefix = mapping.ATTRIBUTE_PREFIX
    return [t[len(prefix) :] for t in job.mapping if t.startswith(prefix)]


def chunk_written(job: ImportJob, result: ChunkResult) -> None:
    """Called once per chunk, in its transaction, after its rows are written: the place
    where what is maintained from an import's rows is brought up to date (per-list
    subscription counters from `result.subscribed`, list id -> confirmed subscriptions
    added). Nothing is maintained yet."""


def _report_chunk(out: Any, chunk: Chunk, result: ChunkResult, counts: dict[str, int]) -> None:
    refused = list(chunk.refused)
    for seq, (reason, kind) in result.refused.items():
        line, cells = chunk.rows[seq]
        refused.append((seq, line, reason, kind, cells))
    refused.sort(key=lambda r: r[0])
    for _, line, reason, kind, cells in refused:
        counts[kind] = counts.get(kind, 0) + 1
        out.writerow([line, reason, *cells])
    for key, n in (
        ("added", result.added),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
    ):
        counts[key] = counts.get(key, 0) + n


def read_chunks(job: ImportJob, reader: RowReader) -> Iterator[Chunk]:
    """The file's records from the checkpoint on, checked, in chunks of CHUNK_ROWS."""
    chunk = Chunk(start=job.rows_done, end=job.rows_done)
    first_line: dict[str, str] = {}
    for record in read_records(transfer_path(job.upload_file), job.file_info, skip=job.rows_done):
        result = reader(record.seq, record.cells)
        if isinstance(result, Contact):
            earlier = first_line.get(result.email)
            if earlier is None:
                first_line[result.email] = record.line
                chunk.contacts.append(result)
                chunk.rows[record.seq] = (record.line, record.cells)
            else:
                reason = f"duplicate of line {earlier}: only the first is used"
                chunk.refused.append((record.seq, record.line, reason, DUPLICATES, record.cells))
        elif isinstance(result, Refusal):
            chunk.refused.append(
                (record.seq, record.line, result.reason, result.kind, record.cells)
            )
        chunk.end = record.seq + 1
        if chunk.end - chunk.start >= CHUNK_ROWS:
            yield chunk
            chunk = Chunk(start=chunk.end, end=chunk.end)
            first_line = {}
    if chunk.end > chunk.start:
        yield chunk


_END = object()


def _chunks_in_background(job: ImportJob, reader: RowReader) -> Generator[Chunk, None, None]:
    """read_chunks in a thread: parsing the next chunks overlaps the database writing
    the ones before (psycopg releases the GIL while PostgreSQL works). One chunk waits
    ready: with the lanes, more would only hold memory."""
    channel: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                channel.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in read_chunks(job, reader):
                if not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    thread = threading.Thread(target=produce, name=f"import-{job.pk}-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _remove(relative: str) -> None:
    if relative:
        transfer_path(relative).unlink(missing_ok=True)
