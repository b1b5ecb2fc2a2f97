"""Benchmark: import contacts from a CSV file through the whole pipeline (read, check,
dedupe, suppression, consent fields, write) against a bare SQL load of the same rows into
the same tables, with the same indexes and constraints, in the same run: the contacts,
subscriptions and proof of consent the import wrote, copied out and loaded again with one
COPY per table in one transaction (the least any import must write). The old figure, a
bare COPY of the file into an unindexed table of four text columns, is printed too,
labelled. Each size runs in its own process so its peak memory is its own.

    python bench/run.py import [--size N]      (default 1,000,000; 100,000 is run too)
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def same_tables_load() -> float:
    """Copy out what the import wrote, empty those tables, and time loading it back with
    one COPY per table in one transaction: every index and foreign key checked as the
    import's are. Returns the seconds of the load (commit included)."""
    import tempfile

    from django.db import connection, transaction

    dumps = {table: tempfile.TemporaryFile() for table in WRITTEN}  # noqa: SIM115
    with connection.cursor() as cursor:
        for table, dump in dumps.items():
            with cursor.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    dump.write(block)
            dump.seek(0)
        cursor.execute(f"TRUNCATE {', '.join(WRITTEN)} CASCADE")
        cursor.execute("CHECKPOINT")
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, dump in dumps.items():
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                while block := dump.read(1 << 20):
                    copy.write(block)
    return time.perf_counter() - t


def child(n: int) -> dict:
    import benchdb

    benchdb.setup()
    from django.db import connection

    from tidings.accounts.models import Account, User
    from tidings.audience.models import Contact, MailingList, SuppressedContact
    from tidings.privacy.services import email_digest
    from tidings.transfer import services
    from tidings.transfer.models import ImportJob

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
    import datetime as dt

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
    return {
        "rows": n,
        "bytes": size,
        "copy_s": copy_s,
        "upload_s": upload_s,
        "import_s": import_s,
        "counts": job.counts,
        "contacts": contacts,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb,
    }


def main(size: int | None) -> None:
    size = size or 1_000_000
    sizes = sorted({min(100_000, size), size})
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__)), "--child", str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        rate = n / result["import_s"]
        print(
            f"{n:>9,} rows ({result['bytes'] / 1e6:.0f} MB): import {result['import_s']:.2f} s "
            f"({rate:,.0f} rows/s); same rows loaded bare into the same tables "
            f"{result['load_s']:.2f} s, ratio {result['load_s'] / result['import_s']:.3f}; "
            f"upload to disk {result['upload_s']:.2f} s; peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        print(
            f"          (old figure: bare COPY of the file into an unindexed table of four "
            f"text columns {result['copy_s']:.2f} s, ratio "
            f"{result['copy_s'] / result['import_s']:.3f})"
        )
        print(f"          counts {result['counts']}, contacts written {result['contacts']:,}")
    big = results[-1]
    ratio = big["load_s"] / big["import_s"]
    print(
        f"goal: ratio >= 0.5 (is {ratio:.3f}), 1M under 30 s (is {big['import_s']:.1f} s), "
        f"peak RSS < 300 MB and flat (is {results[0]['peak_rss_mb']:.0f} MB -> "
        f"{big['peak_rss_mb']:.0f} MB)"
    )
    print(f"import ratio={ratio:.3f}")


BENCHMARKS = {"import": main}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.path.insert(0, str(HERE))
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
