"""The Celery application: the worker, the scheduler and every task share it."""

import os

from celery import Celery
from celery.schedules import crontab
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")

app = Celery("tidings")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The sending engine: scheduled campaigns, dead workers' claims and lost batches,
    # the bounce mailbox (docs/sending.md).
    "start-due-campaigns": {"task": "tidings.sending.tasks.start_due_campaigns", "schedule": 60.0},
    "recover-stalled-sending": {"task": "tidings.sending.tasks.recover_stalled", "schedule": 60.0},
    # Opens, clicks and one-click unsubscriptions' counts queued by the public links
    # (a Redis stream), written in batches (docs/sending.md).
    "record-tracking-events": {
        "task": "tidings.sending.tasks.record_tracking_events",
        "schedule": 5.0,
    },
    # Our own page views counted in Redis (P26), written exactly once (consent.services).
    "flush-page-views": {"task": "tidings.consent.tasks.flush_page_views", "schedule": 10.0},
    # Automations: new subscribers enter, the unmailable leave, due steps run.
    "run-automations": {"task": "tidings.automations.tasks.run_automations", "schedule": 60.0},
    # Outgoing webhooks: new events written, due messages sent or retried.
    "run-webhooks": {"task": "tidings.automations.tasks.run_webhooks", "schedule": 60.0},
    "read-bounce-mailbox": {"task": "tidings.sending.tasks.read_bounce_mailbox", "schedule": 300.0},
    # Sending domains stay proven only while their DNS records stay published.
    "recheck-sending-domains": {
        "task": "tidings.sending.tasks.recheck_sending_domains",
        "schedule": 3600.0,
    },
    # Business buyers' VAT numbers VIES did not answer for, asked again (billing/vies.py).
    "retry-vies-checks": {"task": "tidings.billing.tasks.retry_vies_checks", "schedule": 600.0},
    # Plans renew at their period's end; a failed renewal's reminders on days 3 and 7
    # and the suspension of sending on day 14 (billing.renewals, billing.dunning).
    "run-renewals": {"task": "tidings.billing.tasks.run_renewals", "schedule": 3600.0},
    # Automatic recharges due but not made (the job was lost, the gateway was down):
    # each account's job decides again under its lock (billing.recharge).
    "sweep-recharges": {"task": "tidings.billing.tasks.sweep_recharges", "schedule": 600.0},
    # A closed account's plans cancelled at the gateway (Stripe), retried with backoff
    # while it does not answer (billing.cancellation).
    "cancel-at-gateways": {"task": "tidings.billing.tasks.cancel_at_gateways", "schedule": 600.0},
    # The support desk's follow-ups that are due (P6), each sent once.
    "send-due-followups": {"task": "tidings.desk.tasks.send_due_followups", "schedule": 300.0},
    # Mail to the support address in an IMAP mailbox, when one is configured (docs/desk.md).
    "poll-support-mailbox": {"task": "tidings.desk.tasks.poll_support_mailbox", "schedule": 60.0},
    # Erasure must finish by day 60 (P13): running every hour leaves ample margin.
    "erase-due-accounts": {"task": "tidings.privacy.tasks.erase_due_accounts", "schedule": 3600.0},
    # Every retention rule of the data map, once a day (P12, P14): unconfirmed
    # registrations, the local outbox, what erasure kept for a legal reason, and the
    # rules later apps add. `tidings retention --dry-run` shows what it would delete.
    "escalate-due-requests": {
        "task": "tidings.privacy.tasks.escalate_due_requests",
        "schedule": crontab(minute=7, hour="8,14"),
    },
    # A disclosure to an authority withheld from the customer while the law forbade
    # telling is told to them when that ends (P25, docs/rights.md).
    "tell-customers-of-ended-withholdings": {
        "task": "tidings.privacy.tasks.tell_customers_of_ended_withholdings",
        "schedule": crontab(minute=12),
    },
    # A breach's 72-hour clock: officers mailed at 24, 48, 60 and 72 hours (P33).
    "escalate-breach-clocks": {
        "task": "tidings.breaches.tasks.escalate_breach_clocks",
        "schedule": 300.0,
    },
    # Contacts' requests to customers past their one-month deadline (docs/rights.md).
    "escalate-overdue-contact-requests": {
        "task": "tidings.audience.tasks.escalate_overdue_contact_requests",
        "schedule": crontab(minute=37, hour="8,14"),
    },
    # Restrictions of processing end when their announced date comes (P18, art. 18(3)).
    "lift-due-contact-restrictions": {
        "task": "tidings.audience.tasks.lift_due_restrictions",
        "schedule": 3600.0,
    },
    # The lists' maintained counters: one row per list and status again (audience.counters).
    "compact-list-counts": {
        "task": "tidings.audience.tasks.compact_list_counts",
        "schedule": crontab(minute=27),
    },
    "lift-due-account-restrictions": {
        "task": "tidings.accounts.tasks.lift_due_restrictions",
        "schedule": 3600.0,
    },
    "apply-retention": {
        "task": "tidings.privacy.tasks.apply_retention",
        "schedule": crontab(minute=17, hour=3),
    },
    # The audit log's head, signed, to the data directory and mailed to the privacy
    # contact, after the retention job so today's expiry is in it (P7, docs/operator.md).
    "audit-checkpoint": {
        "task": "tidings.staff.tasks.write_audit_checkpoint",
        "schedule": crontab(minute=37, hour=3),
    },
    "delete-expired-transfer-files": {
        "task": "tidings.transfer.tasks.delete_expired_transfer_files",
        "schedule": crontab(minute=47),
    },
    # Upload files no import names (a request or an analysis killed half-way), once
    # TIDINGS_ORPHAN_UPLOAD_HOURS old (docs/transfer.md).
    "sweep-orphaned-transfer-files": {
        "task": "tidings.transfer.tasks.sweep_orphaned_transfer_files",
        "schedule": crontab(minute=27),
    },
    "resume-stalled-transfers": {
        "task": "tidings.transfer.tasks.resume_stalled_transfers",
        "schedule": 300.0,
    },
    # The "all my data" archives (P20) whose worker died or whose job was lost.
    "resume-stalled-archives": {
        "task": "tidings.privacy.tasks.resume_stalled_archives",
        "schedule": 300.0,
    },
}

# What beat runs only where there is Redis (leave_out_what_cannot_run).
WITH_REDIS_ONLY = ("record-tracking-events", "flush-page-views")


@app.on_after_finalize.connect
def leave_out_what_cannot_run(sender: Celery, **_kwargs: object) -> None:
    """Once the app is set up (before beat reads its schedule), what this installation
    has nothing for is left out: without Redis there is no stream of opens and clicks
    to drain and no buffer of page views to flush (the requests write them directly),
    so the embedded default's terminal is not told every few seconds that nothing was
    done."""
    if not settings.REDIS_URL:
        for name in WITH_REDIS_ONLY:
            sender.conf.beat_schedule.pop(name, None)
