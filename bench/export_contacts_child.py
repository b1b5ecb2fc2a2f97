"""The export benchmark's side in Django (bench/export_contacts.py runs it as a child
process, so each measurement's peak RSS is its own): Django is configured on the bench
database before anything of Tidings is imported. `ensure_audience` is shared with the
segment and dashboard benchmarks' children.

    python bench/export_contacts_child.py KIND N   (KIND: csv, xlsx, xls, bare-csv, bare-xlsx)
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from django.db import connection, transaction  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience.models import Contact, MailingList  # noqa: E402
from tidings.transfer.exporter import export_contacts  # noqa: E402

COLUMNS = "email, name, status, tags, legal_basis, basis_at, source, created_at, attributes"


def ensure_audience(n: int) -> int:
    """An account with n contacts (all on one list), made once and kept between runs."""
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
                    import xlsxwriter  # only here, as before: the bare CSV's RSS without it

                    book = xlsxwriter.Workbook(str(out), {"constant_memory": True})
                    sheet = book.add_worksheet()
                    for r, row in enumerate(cursor):
                        sheet.write_row(r, 0, [str(v) if v is not None else "" for v in row])
                    book.close()
    else:
        export_contacts(Contact.objects.filter(account_id=account_id), kind, out)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "bytes": out.stat().st_size, "peak_rss_mb": benchdb.peak_rss_mb()}


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
