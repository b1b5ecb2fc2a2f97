"""The send benchmark's side in Django (bench/send_campaign.py runs it as a child process):
the benchmark's own environment (its database, the broker, no eager tasks, the relay
allowed on loopback, the credits) is set and Django configured before anything of
Tidings is imported.

    python bench/send_campaign_child.py campaigns SMALL SIZE WORKERS PORT LIMIT PATH
        a campaign of SMALL, then one of SIZE, each through WORKERS fresh workers into
        the sink on PORT, then the last one's first LIMIT messages built and written to
        PATH: all in this one process, one after the other, as the benchmark's own
        process did them before (its first campaign warms it up for the next: the first
        message of a campaign started from a fresh process comes seconds later)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from send_campaign import (
    BODY,
    DEFAULT_BROKER,
    DEFAULT_DB,
    ROOT,
    cpu_seconds,
    group_cpu_seconds,
    peak_rss_mb,
    start_workers,
)


def setup_django(broker: str) -> None:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    name = url.rsplit("/", 1)[-1]
    if "bench" not in name:
        raise SystemExit(f"BENCH_DATABASE_URL must name a database for benchmarks, not {name!r}")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["TIDINGS_TASKS_EAGER"] = "false"
    # The bench's customer relay is smtp-sink on loopback: the operator allows it.
    os.environ.setdefault("TIDINGS_ALLOWED_RELAY_HOSTS", "127.0.0.1")
    os.environ.setdefault("TIDINGS_DATA_DIR", tempfile.mkdtemp(prefix="tidings-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    # The bench's account has the credits its campaign needs (one per message).
    os.environ.setdefault("TIDINGS_FREE_CREDITS", "100000000")
    sys.path.insert(0, str(ROOT / "src"))
    import django  # here: nothing of Django before the environment above is set
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("createcachetable")  # as `tidings up` does: the cache without Redis


setup_django(os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER))

# Django is configured just above: the rest may be imported now.
from django.db.models import Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience.models import Contact, MailingList, Subscription  # noqa: E402
from tidings.campaigns.models import Campaign  # noqa: E402
from tidings.celery import app  # noqa: E402
from tidings.sending import lifecycle  # noqa: E402
from tidings.sending.mailer import CampaignMailer, Recipient  # noqa: E402
from tidings.sending.models import Delivery, Relay, SendingSettings  # noqa: E402
from tidings.sending.services import add_sending_domain  # noqa: E402


def make_campaign(size: int, port: int) -> Campaign:
    account = Account.objects.create(name=f"Bench {size}")
    newsletter = MailingList.objects.create(account=account, name="Everyone")
    now = timezone.now()
    batch = 5000
    for start in range(0, size, batch):
        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    account=account,
                    email=f"reader{i}@example.net",
                    name=f"Reader Number{i}",
                    attributes={"city": "Ghent"},
                    basis_at=now,
                )
                for i in range(start, min(size, start + batch))
            ]
        )
        Subscription.objects.bulk_create(
            [Subscription(contact=c, mailing_list=newsletter, confirmed_at=now) for c in contacts]
        )
    SendingSettings.objects.create(account=account, postal_address="1 Bench Street, 1000 City")
    Relay.objects.create(
        account=account, name="sink", host="127.0.0.1", port=port, security="none",
        max_connections=16,
    )  # fmt: skip
    if os.environ.get("BENCH_DKIM"):
        # Proven as a customer proves it in DNS (sending.domains): signed with its key.
        add_sending_domain(account, "news.example.org")
        account.sending_domains.update(proven_at=now)
    campaign = Campaign.objects.create(
        account=account,
        name="Bench",
        subject="News for {{ contact.first_name }}",
        from_name="Bench News",
        from_email="news@news.example.org",
        body=BODY,
    )
    campaign.lists.add(newsletter)
    return campaign


def prerendered(campaign: Campaign, limit: int) -> list[tuple[str, bytes]]:
    """The campaign's messages as the engine builds them (dot-stuffed, as they go over
    SMTP), made before timing."""
    mailer = CampaignMailer(campaign)
    out = []
    for contact in Contact.objects.filter(account=campaign.account).order_by("pk")[:limit]:
        recipient = Recipient(
            delivery_id=contact.pk,
            message_id=f"<bare.{contact.pk}@news.example.org>",
            email=contact.email,
            name=contact.name,
            attributes=contact.attributes,
            uuid=contact.uuid.hex,
            allow_tracking=contact.allow_tracking,
        )
        out.append((contact.email, mailer.wire_for(recipient)))
    return out


def wait_for_workers(count: int) -> None:
    for _ in range(120):
        if len(app.control.ping(timeout=0.5)) >= count:
            return
    raise SystemExit("the workers did not start")


def run_campaign(size: int, workers: int, port: int) -> dict[str, float]:
    """One campaign of `size` through fresh workers: rate, first-message delay, memory."""
    campaign = make_campaign(size, port)
    procs = start_workers(workers, dict(os.environ))
    wait_for_workers(workers)  # the clock starts when every worker listens
    cpu_before = sum(cpu_seconds(p.pid) for p in procs)
    groups = {p.pid for p in procs}
    all_before = group_cpu_seconds(groups)
    try:
        start = time.perf_counter()
        started_at = time.time()
        lifecycle.start_campaign(campaign, confirmed_recipients=size)  # as the page asks
        while Campaign.objects.get(pk=campaign.pk).status != Campaign.Status.SENT:
            time.sleep(0.2)
            if time.perf_counter() - start > 3600:
                raise SystemExit("the campaign did not finish within an hour")
        elapsed = time.perf_counter() - start
        first = Delivery.objects.filter(campaign=campaign).aggregate(m=Min("sent_at"))["m"]
        sent = Delivery.objects.filter(campaign=campaign, status="sent").count()
        memory = max(peak_rss_mb(p.pid) for p in procs)
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        all_cpu = group_cpu_seconds(groups) - all_before
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait()
    return {
        "rate": sent / elapsed,
        "sent": sent,
        "elapsed": elapsed,
        "first": first.timestamp() - started_at,
        "memory": memory,
        "cpu_ms": cpu * 1000 / max(1, sent),
        "all_cpu_ms": all_cpu * 1000 / max(1, sent),
    }


def prerender(limit: int, path: Path) -> dict[str, float]:
    """Builds the last campaign's first `limit` messages (the CPU per message timed) and
    writes them to `path` for bench/send_campaign.py: per message its address on a line,
    the length of its bytes on the next, then the bytes."""
    cpu = time.process_time()
    campaign = Campaign.objects.order_by("-pk").first()
    assert campaign is not None
    sample = prerendered(campaign, limit)
    build_ms = (time.process_time() - cpu) * 1000 / len(sample)
    with open(path, "wb") as handle:
        for rcpt, data in sample:
            handle.write(f"{rcpt}\n{len(data)}\n".encode() + data)
    return {"build_ms": build_ms, "messages": len(sample)}


if __name__ == "__main__":
    step, args = sys.argv[1], sys.argv[2:]
    if step == "campaigns":
        small, size, workers, port, limit = (int(a) for a in args[:5])
        low = run_campaign(small, workers, port)
        full = run_campaign(size, workers, port)
        print(json.dumps({"low": low, "full": full, **prerender(limit, Path(args[5]))}))
    else:
        sys.exit(f"unknown step {step!r}")
