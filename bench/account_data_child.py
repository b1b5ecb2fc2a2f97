"""The account-data benchmarks' side in Django (bench/account_data.py runs it as a child
process: the account is made in one, each measurement runs in another, so its peak RSS
is its own): Django is configured on the bench database before anything of Tidings is
imported.

    python bench/account_data_child.py prepare-export N | prepare-erasure N
    BENCH_ACCOUNT=ID python bench/account_data_child.py account-export N | erasure N | floor N
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from tidings.accounts.models import Account, User  # noqa: E402
from tidings.audience.models import Contact, MailingList  # noqa: E402
from tidings.campaigns.models import Campaign  # noqa: E402
from tidings.privacy.archive import write_archive  # noqa: E402
from tidings.privacy.services import erase_account  # noqa: E402


def make_account(name: str, n: int) -> int:
    """An account of n contacts and their subscriptions, proofs, deliveries and opens."""
    account = Account.objects.filter(name=name).first()
    if account and Contact.objects.filter(account=account).count() == n:
        return account.pk
    if account:
        account.delete()
    with transaction.atomic():
        account = Account.objects.create(name=name)
        User.objects.create_user(
            f"owner-{account.pk}@example.org",
            "x" * 16,
            name="Bench Owner",
            account=account,
            phone="+44 20 7946 0000",
            postal_address="1 Bench Row",
            email_confirmed_at=timezone.now(),
        )
        newsletter = MailingList.objects.create(account=account, name="Newsletter")
        campaign = Campaign.objects.create(
            account=account,
            name="Bench campaign",
            subject="Hello",
            from_email="news@example.org",
            status="sent",
            finished_at=timezone.now(),
            body="Hello {{ contact.name }}",
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audience_contact (account_id, uuid, email, digest, name, status,"
                " attributes, tags, legal_basis, basis_at, source, soft_bounces, allow_tracking,"
                " allow_profiling, restriction_reason, created_at, updated_at) "
                "SELECT %s, gen_random_uuid(), 'person' || i || '-' || %s || '@example.org',"
                " md5(i::text || '-' || %s),"
                " 'Person ' || i, 'active', jsonb_build_object('city', 'City ' || (i %% 100),"
                " 'plan', CASE WHEN i %% 7 = 0 THEN 'free' ELSE 'pro' END), '[]'::jsonb,"
                " 'consent', now(), 'import', 0, true, true, '', now(), now() "
                "FROM generate_series(1, %s) AS i",
                [account.pk, account.pk, account.pk, n],
            )
            cursor.execute(
                "INSERT INTO audience_subscription (contact_id, mailing_list_id, status,"
                " created_at, confirmed_at) SELECT id, %s, 'confirmed', now(), now()"
                " FROM audience_contact WHERE account_id = %s",
                [newsletter.pk, account.pk],
            )
            cursor.execute(
                "INSERT INTO audience_consentproof (account_id, contact_id, mailing_list_id,"
                " method, legal_basis, consent_text, consent_version, ip_address, user_agent,"
                " given_at, double_optin, note, source, file_digest) SELECT account_id, id, %s,"
                " 'form', 'consent', 'Yes please', '1', '192.0.2.1', 'BenchBrowser/1.0', now(),"
                " false, '', '', '' FROM audience_contact WHERE account_id = %s",
                [newsletter.pk, account.pk],
            )
            cursor.execute(
                "INSERT INTO sending_delivery (campaign_id, contact_id, status, attempts,"
                " message_id, claimed_by, sent_at, created_at, last_error)"
                " SELECT %s, id, 'sent', 1, '<' || id || '@bench>', '', now(), now(), ''"
                " FROM audience_contact WHERE account_id = %s",
                [campaign.pk, account.pk],
            )
            cursor.execute(
                "INSERT INTO sending_trackingevent (campaign_id, delivery_id, kind, url, first,"
                " at) SELECT %s, id, 'open', '', true, now() FROM sending_delivery"
                " WHERE campaign_id = %s AND id %% 10 = 0",
                [campaign.pk, campaign.pk],
            )
    with connection.cursor() as cursor:
        for table in ("audience_contact", "audience_subscription", "audience_consentproof",
                      "sending_delivery", "sending_trackingevent"):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")
    return account.pk


def child(kind: str, n: int) -> dict:
    if kind == "prepare-export":
        return {"account": make_account(f"Account export bench {n}", n)}
    if kind == "prepare-erasure":
        return {"account": make_account(f"Erasure bench {n} {time.time_ns()}", n)}
    account_id = int(os.environ["BENCH_ACCOUNT"])
    if kind == "account-export":
        fmt = os.environ.get("BENCH_FORMAT", "csv")
        out = Path(tempfile.mkdtemp(prefix="tidings-archive-bench-")) / "all.zip"
        t = time.perf_counter()
        counts = write_archive(Account.objects.get(pk=account_id), fmt, out)
        seconds = time.perf_counter() - t
        size = out.stat().st_size
        out.unlink()
        return {
            "seconds": seconds,
            "bytes": size,
            "rows": sum(counts.values()),
            "peak_rss_mb": benchdb.peak_rss_mb(),
        }

    if kind == "floor":
        return floor(account_id)
    Account.objects.filter(pk=account_id).update(
        status=Account.Status.CLOSED, closed_at=timezone.now(), erase_after=timezone.now()
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    t = time.perf_counter()
    cpu = _cpu_seconds(backend), time.process_time()
    record = erase_account(account_id, requested_by="bench")
    seconds = time.perf_counter() - t
    # CPU used by this process and its PostgreSQL backend: what the run costs whatever
    # else the shared machine runs (the wall time follows the load average).
    backend_cpu = _cpu_seconds(backend) - cpu[0]
    python_cpu = time.process_time() - cpu[1]
    assert record is not None and record.finished_at is not None
    return {
        "seconds": seconds,
        "rows": sum(record.counts.values()),
        "counts": record.counts,
        "peak_rss_mb": benchdb.peak_rss_mb(),
        "backend_cpu": backend_cpu,
        "python_cpu": python_cpu,
        "load": os.getloadavg()[0],
    }


# The erasure's floor: the same account's rows deleted by bare statements, one per table,
# in one transaction, in the order the foreign keys allow (every key and index of the
# tables in place: PostgreSQL checks each deleted contact against every table that
# points at it, as it does for the erasure).
FLOOR_STATEMENTS = [
    "DELETE FROM sending_trackingevent WHERE campaign_id IN"
    " (SELECT id FROM campaigns_campaign WHERE account_id = %(a)s)",
    "DELETE FROM sending_delivery WHERE campaign_id IN"
    " (SELECT id FROM campaigns_campaign WHERE account_id = %(a)s)",
    "DELETE FROM audience_subscription WHERE mailing_list_id IN"
    " (SELECT id FROM audience_mailinglist WHERE account_id = %(a)s)",
    "DELETE FROM audience_consentproof WHERE account_id = %(a)s",
    "DELETE FROM audience_contact WHERE account_id = %(a)s",
    "DELETE FROM audience_listcount WHERE mailing_list_id IN"
    " (SELECT id FROM audience_mailinglist WHERE account_id = %(a)s)",
    "DELETE FROM audience_listgrowth WHERE mailing_list_id IN"
    " (SELECT id FROM audience_mailinglist WHERE account_id = %(a)s)",
    "DELETE FROM campaigns_campaign WHERE account_id = %(a)s",
    "DELETE FROM audience_mailinglist WHERE account_id = %(a)s",
    "DELETE FROM accounts_user WHERE account_id = %(a)s",
    "DELETE FROM accounts_account WHERE id = %(a)s",
]


def floor(account_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    t = time.perf_counter()
    cpu = _cpu_seconds(backend)
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        for statement in FLOOR_STATEMENTS:
            cursor.execute(statement, {"a": account_id})
            rows += cursor.rowcount
    return {
        "seconds": time.perf_counter() - t,
        "rows": rows,
        "backend_cpu": _cpu_seconds(backend) - cpu,
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process on this machine (PostgreSQL on 127.0.0.1)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
