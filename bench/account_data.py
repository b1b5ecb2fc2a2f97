"""Benchmarks of the data-subject rights on a big account: the "all my data" archive
(P20) and the erasure of the account (P13, P17).

    python bench/run.py account-export [--size N]   (default 1,000,000 contacts)
    python bench/run.py erasure [--size N]          (default 1,000,000 contacts)

The account has N contacts, each on one list with a proof of consent and a delivery of
one sent campaign, and one open for every tenth contact: about 4.1 N rows. It is made
with SQL in a process of its own; the measurement runs in another, so its peak RSS is
its own. The archive's format is BENCH_FORMAT (csv, xlsx or xls; default csv). The
archive's account is kept between runs; the erasure's is made afresh each time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ERASURE_GOAL_S = 120


def make_account(name: str, n: int) -> int:
    """An account of n contacts and their subscriptions, proofs, deliveries and opens."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tidings.accounts.models import Account, User
    from tidings.audience.models import Contact, MailingList
    from tidings.campaigns.models import Campaign

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
    import benchdb

    benchdb.setup()
    from django.db import connection

    from tidings.accounts.models import Account

    if kind == "prepare-export":
        return {"account": make_account(f"Account export bench {n}", n)}
    if kind == "prepare-erasure":
        return {"account": make_account(f"Erasure bench {n} {time.time_ns()}", n)}
    account_id = int(os.environ["BENCH_ACCOUNT"])
    if kind == "account-export":
        from tidings.privacy.archive import write_archive

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
    from django.utils import timezone

    from tidings.privacy.services import erase_account

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


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process on this machine (PostgreSQL on 127.0.0.1)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_child(kind: str, n: int, account: int | None = None) -> dict:
    # One data directory for every run: the kept account's encrypted fields (the owner's
    # phone and address) need the field keys generated there.
    default_dir = Path(tempfile.gettempdir()) / "tidings-bench-account-data"
    env = {"TIDINGS_DATA_DIR": str(default_dir), **os.environ}
    if account is not None:
        env["BENCH_ACCOUNT"] = str(account)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), "--child", kind, str(n)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def account_export(size: int | None) -> None:
    n = size or 1_000_000
    fmt = os.environ.get("BENCH_FORMAT", "csv")
    account = _run_child("prepare-export", n)["account"]
    got = _run_child("account-export", n, account)
    print(
        f"archive of all the data of an account of {n:,} contacts ({got['rows']:,} rows, "
        f"{fmt}): {got['seconds']:.1f} s ({got['rows'] / got['seconds']:,.0f} rows/s), "
        f"zip {got['bytes'] / 1e6:.0f} MB, peak RSS {got['peak_rss_mb']:.0f} MB"
    )
    print(f"account-export s={got['seconds']:.1f} rss_mb={got['peak_rss_mb']:.0f}")


def erasure(size: int | None) -> None:
    n = size or 1_000_000
    account = _run_child("prepare-erasure", n)["account"]
    got = _run_child("erasure", n, account)
    print(
        f"erasure of an account of {n:,} contacts ({got['rows']:,} rows): "
        f"{got['seconds']:.1f} s ({got['rows'] / got['seconds']:,.0f} rows/s), "
        f"peak RSS {got['peak_rss_mb']:.0f} MB"
    )
    print(f"counts: {json.dumps(got['counts'], sort_keys=True)}")
    print(
        f"CPU: PostgreSQL backend {got['backend_cpu']:.1f} s, Python {got['python_cpu']:.1f} s "
        f"(load average {got['load']:.1f} at the end: the wall time grows with it)"
    )
    print(
        f"goal: under {ERASURE_GOAL_S} s at 1,000,000 contacts; ratio to the goal "
        f"{got['seconds'] / ERASURE_GOAL_S:.2f} (under 1 meets it)"
    )
    print(f"erasure s={got['seconds']:.1f} rss_mb={got['peak_rss_mb']:.0f}")


BENCHMARKS = {"account-export": account_export, "erasure": erasure}


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
