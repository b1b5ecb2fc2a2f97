"""Benchmark: export contacts to CSV and XLSX through Tidings's exporter, against the bare
library over a server-side cursor on the same rows, in the same run. Each measurement
runs in its own process so its peak memory is its own.

    python bench/run.py export-csv [--size N]     (default 1,000,000; 100,000 too)
    python bench/run.py export-xlsx [--size N]
    python bench/run.py export-xls [--size N]      (memory growth of XLS; default 300,000)
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = "email, name, status, tags, legal_basis, basis_at, source, created_at, attributes"


def ensure_audience(n: int) -> int:
    """An account with n contacts (all on one list), made once and kept between runs."""
    from django.db import connection, transaction

    from tidings.accounts.models import Account
    from tidings.audience.models import Contact, MailingList

    name = f"Export bench {n}"
    account = Account.objects.filter(name=name).first()
    if account and Contact.objects.filter(account=account).count() == n:
        return account.pk
    with transaction.atomic():
        if account:
            account.delete()
        account = Account.objects.create(name=name)
        newsletter = MailingList.objects.create(account=account, name="Newsletter")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audience_contact (account_id, uuid, email, digest, name, status,"
                " attributes, tags, legal_basis, basis_at, source, soft_bounces, allow_tracking,"
                " allow_profiling, restriction_reason, created_at, updated_at) "
                "SELECT %s, gen_random_uuid(), 'person' || i || '@example.org',"
                " md5(i::text || '-' || %s),"
                " 'Person ' || i, 'active', jsonb_build_object('city', 'City ' || (i %% 100),"
                " 'plan', CASE WHEN i %% 7 = 0 THEN 'free' ELSE 'pro' END), '[]'::jsonb,"
                " 'consent', now(), 'import', 0, true, true, '', now(), now() "
                "FROM generate_series(1, %s) AS i",
                [account.pk, account.pk, n],
            )
            cursor.execute(
                "INSERT INTO audience_subscription (contact_id, mailing_list_id, status,"
                " created_at, confirmed_at) SELECT id, %s, 'confirmed', now(), now()"
                " FROM audience_contact WHERE account_id = %s",
                [newsletter.pk, account.pk],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audience_contact")
        cursor.execute("ANALYZE audience_subscription")
    return account.pk


def child(kind: str, n: int) -> dict:
    import benchdb

    benchdb.setup()
    from django.db import connection

    from tidings.audience.models import Contact
    from tidings.transfer.exporter import export_contacts

    account_id = ensure_audience(n)
    suffix = kind.removeprefix("bare-")
    out = Path(tempfile.mkdtemp(prefix="tidings-export-bench-")) / f"out.{suffix}"
    t = time.perf_counter()
    if kind.startswith("bare"):
        with connection.cursor() as django_cursor:
            raw = django_cursor.connection
            with raw.transaction(), raw.cursor(name="bench_export") as cursor:
                cursor.itersize = 5000
                cursor.execute(
                    f"SELECT {COLUMNS} FROM audience_contact WHERE account_id = %s ORDER BY id",  # noqa: S608
                    [account_id],
                )
                if kind == "bare-csv":
                    with open(out, "w", encoding="utf-8", newline="") as handle:
                        writer = csv.writer(handle)
                        for row in cursor:
                            writer.writerow(row)
                else:
                    import xlsxwriter

                    book = xlsxwriter.Workbook(str(out), {"constant_memory": True})
                    sheet = book.add_worksheet()
                    for r, row in enumerate(cursor):
                        sheet.write_row(r, 0, [str(v) if v is not None else "" for v in row])
                    book.close()
    else:
        export_contacts(Contact.objects.filter(account_id=account_id), kind, out)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "bytes": out.stat().st_size, "peak_rss_mb": benchdb.peak_rss_mb()}


def measure(kind: str, n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), "--child", kind, str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(fmt: str, size: int | None) -> None:
    size = size or 1_000_000
    small = min(100_000, size)
    ours_small = measure(fmt, small)
    bare = measure(f"bare-{fmt}", size)
    ours = measure(fmt, size)
    library = "csv.writer" if fmt == "csv" else "XlsxWriter (constant memory)"
    print(
        f"bare {library} over a server-side cursor, {size:,} rows: {bare['seconds']:.2f} s "
        f"({size / bare['seconds']:,.0f} rows/s), peak RSS {bare['peak_rss_mb']:.0f} MB"
    )
    print(
        f"Tidings export ({fmt}), {size:,} rows: {ours['seconds']:.2f} s "
        f"({size / ours['seconds']:,.0f} rows/s), {ours['bytes'] / 1e6:.0f} MB, "
        f"peak RSS {ours['peak_rss_mb']:.0f} MB ({ours_small['peak_rss_mb']:.0f} MB at {small:,})"
    )
    ratio = bare["seconds"] / ours["seconds"]
    print(f"goal: ratio >= 0.5 (is {ratio:.3f}), peak memory flat")
    print(f"export-{fmt} ratio={ratio:.3f}")


def run_xls(size: int | None) -> None:
    """XLS has no constant-memory writer: measure how its memory grows."""
    size = size or 300_000
    sizes = sorted({min(65_535, size), min(100_000, size), size})
    last = {}
    for n in sizes:
        last = measure("xls", n)
        print(
            f"Tidings export (xls), {n:,} rows: {last['seconds']:.2f} s "
            f"({n / last['seconds']:,.0f} rows/s), {last['bytes'] / 1e6:.0f} MB, "
            f"peak RSS {last['peak_rss_mb']:.0f} MB"
        )
    print(f"export-xls ms={last['seconds'] * 1000:.0f}")


BENCHMARKS = {
    "export-csv": lambda size: run("csv", size),
    "export-xlsx": lambda size: run("xlsx", size),
    "export-xls": run_xls,
}

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, str(HERE))
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
    else:
        run(sys.argv[1] if len(sys.argv) > 1 else "csv", None)
