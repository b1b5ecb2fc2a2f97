"""The import benchmark's side in Django (bench/import_contacts.py runs it as a child
process, one per size, so each peak RSS is its own): Django is configured on the bench
database before anything of Tidings is imported. It EMPTIES the database's audience
tables first.

    python bench/import_contacts_child.py N
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import benchdb
import psycopg

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from django.db import connection  # noqa: E402

from tidings.accounts.models import Account, User  # noqa: E402
from tidings.audience.models import Contact, MailingList, SuppressedContact  # noqa: E402
from tidings.privacy.services import email_digest  # noqa: E402
from tidings.transfer import services  # noqa: E402
from tidings.transfer.models import ImportJob  # noqa: E402

SUPPRESSED = 1_000


def generate(path: Path, n: int) -> None:
    """A deterministic file of n rows: mixed-case addresses, ~0.3% repeated addresses,
    ~0.2% invalid ones, names with accents, two attribute columns."""
    rnd = random.Random(20261125)
    cities = ["London", "Zürich", "Paris", "Málaga", "Berlin", "Kraków", "Oslo", "Lyon"]
    first = ["Ada", "Grace", "Jörg", "Zoë", "Amélie", "Bjørn", "Chloé", "Ivan", "Mia", "Noah"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Email", "Name", "City", "Plan"])
        for i in range(n):
            roll = rnd.random()
            if roll < 0.003 and i > 10:
                email = f"person{rnd.randrange(i)}@example.org"
            elif roll < 0.005:
                email = f"person{i}-at-example.org"
            elif roll < 0.02:
                email = f"Person{i}@Example.ORG"
            else:
                email = f"person{i}@example.org"
            name = f"{first[i % len(first)]} Example{i}"
            out.writerow([email, name, cities[i % len(cities)], "pro" if i % 7 else "free"])


# What an import writes, in the order the foreign keys need.
WRITTEN = ["audience_consentproof", "audience_contact", "audience_subscription"]


def _dump(query: str) -> Any:
    """The rows of `query`, in COPY's binary form, in a temporary file."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy,
    ):
        for block in copy:
            handle.write(block)
    return handle


def _empty_written() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(WRITTEN)} CASCADE")
        cursor.execute("CHECKPOINT")


def _load(parts: list[tuple[str, Any]]) -> None:
    """Each (table, dump) by one COPY, all in one transaction on a connection of its own."""
    with (
        psycopg.connect(os.environ["DATABASE_URL"]) as conn,
        conn.transaction(),
        conn.cursor() as cursor,
    ):
        for table, handle in parts:
            handle.seek(0)
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                while block := handle.read(1 << 20):
                    copy.write(block)


def same_tables_load() -> float:
    """Copy out what the import wrote, empty those tables, and time loading it back with
    one COPY per table in one transaction: every index and foreign key checked as the
    import's are. Returns the seconds of the load (commit included)."""
    dumps = [(table, _dump(f"SELECT * FROM {table}")) for table in WRITTEN]  # noqa: S608
    _empty_written()
    t = time.perf_counter()
    _load(dumps)
    return time.perf_counter() - t


def two_lane_load() -> float:
    """The same load using both cores, as the import's two lanes may: the proof of
    consent first, then the contacts and their subscriptions in two halves (by the
    contact's id), each half in one transaction on a connection of its own, at once.
    The least an import on two connections could take on this machine, whatever its
    Python does (which needs the same cores). Returns the seconds (commits included)."""
    proofs = _dump("SELECT * FROM audience_consentproof")
    halves = [
        [("audience_contact", _dump(f"SELECT * FROM audience_contact WHERE id % 2 = {k}")),  # noqa: S608
         ("audience_subscription",
          _dump(f"SELECT * FROM audience_subscription WHERE contact_id % 2 = {k}"))]  # noqa: S608
        for k in (0, 1)  # two numbers, nothing from outside (hence the noqa)
    ]  # fmt: skip
    _empty_written()
    t = time.perf_counter()
    _load([("audience_consentproof", proofs)])
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(_load, half) for half in halves]:
            done.result()
    return time.perf_counter() - t


def child(n: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE audience_contact, audience_subscription, audience_consentproof, "
            "audience_suppressedcontact, audience_mailinglist, transfer_importjob CASCADE"
        )
    account = Account.objects.create(name="Bench")
    user = User.objects.create_user(f"bench{time.time_ns()}@example.org", name="B", account=account)
    newsletter = MailingList.objects.create(account=account, name="Newsletter")
    SuppressedContact.objects.bulk_create(
        SuppressedContact(account=account, digest=email_digest(f"person{i * 97}@example.org"),
                          reason="erased")
        for i in range(SUPPRESSED)
    )  # fmt: skip
    path = Path(services.settings.TRANSFER_DIR) / f"bench-{n}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(path, n)
    size = path.stat().st_size

    # The bare COPY: the same bytes into a table of the same (text) columns.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (email text, name text, city text, plan text)")
    t = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        open(path, "rb") as handle,
    ):
        while block := handle.read(1 << 20):
            copy.write(block)
    copy_s = time.perf_counter() - t
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")

    t = time.perf_counter()
    with open(path, "rb") as handle:
        job = services.receive_upload(
            account, by=user, name="bench.csv", chunks=iter(lambda: handle.read(1 << 20), b"")
        )
    upload_s = time.perf_counter() - t
    services.set_mapping(job, targets=job.mapping, mode="add", list_ids=[newsletter.pk])

    t = time.perf_counter()
    # Eager tasks: the job runs right here when start_import commits.
    services.start_import(
        job, by=user, legal_basis="consent", basis_date=dt.date(2024, 3, 1),
        statement="Benchmark: signed up on the website.",
    )  # fmt: skip
    import_s = time.perf_counter() - t
    job = ImportJob.objects.get(pk=job.pk)
    assert job.status == ImportJob.Status.DONE, job.error
    contacts = Contact.objects.filter(account=account).count()
    peak_rss_mb = benchdb.peak_rss_mb()  # the import's, before the bare load
    load_s = same_tables_load()
    assert Contact.objects.filter(account=account).count() == contacts
    two_lanes_s = two_lane_load()
    assert Contact.objects.filter(account=account).count() == contacts
    return {
        "rows": n,
        "bytes": size,
        "copy_s": copy_s,
        "upload_s": upload_s,
        "import_s": import_s,
        "counts": job.counts,
        "contacts": contacts,
        "load_s": load_s,
        "two_lanes_s": two_lanes_s,
        "peak_rss_mb": peak_rss_mb,
    }


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
