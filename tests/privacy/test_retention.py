"""Data is kept while the relation lasts, and no longer (P12)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import UserFactory
from tidings.accounts.models import Account, User
from tidings.accounts.tasks import purge_unconfirmed_signups
from tidings.outbox.models import OutboxMessage
from tidings.outbox.services import store
from tidings.outbox.tasks import purge_old_messages
from tidings.privacy.tasks import apply_retention


def to_outbox(subject: str, to: str) -> None:
    """A message in the local outbox, as the pipeline stores it."""
    data = mail.EmailMessage(subject, "Body", to=[to]).message().as_bytes()
    store(sender="no-reply@example.com", recipient=to, data=data)


@pytest.mark.promise("P12")
def test_registrations_never_confirmed_are_deleted_after_the_period(db, time_machine):
    time_machine.move_to("2026-05-01 09:00Z", tick=False)
    stale = UserFactory(email_confirmed_at=None)
    confirmed = UserFactory()
    time_machine.move_to("2026-05-14 09:00Z", tick=False)
    purge_unconfirmed_signups()
    assert User.objects.filter(pk=stale.pk).exists()
    time_machine.move_to("2026-05-16 09:00Z", tick=False)
    purge_unconfirmed_signups()
    assert not User.objects.filter(pk=stale.pk).exists()
    assert not Account.objects.filter(pk=stale.account_id).exists()
    assert User.objects.filter(pk=confirmed.pk).exists()


@pytest.mark.promise("P12")
def test_the_local_outbox_forgets_mail_after_its_period(db):
    to_outbox("Hello", "ada@example.org")
    message = OutboxMessage.objects.get()
    assert "ada@example.org" in message.recipients and "Hello" in message.raw
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now() - timedelta(days=31))
    to_outbox("Fresh", "bob@example.org")
    assert purge_old_messages() == 1
    assert list(OutboxMessage.objects.values_list("subject", flat=True)) == ["Fresh"]


@pytest.mark.promise("P12")
def test_retention_dry_run_shows_what_would_go_and_why_and_deletes_nothing(db, capsys):
    from django.core.management import call_command

    to_outbox("Old", "ada@example.org")
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(days=31))
    call_command("retention", "--dry-run")
    out = capsys.readouterr().out
    assert "local outbox: would delete 1  (mail in the local outbox is kept 30 days)" in out
    assert "unconfirmed registrations: would delete 0" in out
    assert "kept for a legal reason: invoices: would delete 0" in out
    assert OutboxMessage.objects.count() == 1
    call_command("retention")
    assert "local outbox: deleted 1" in capsys.readouterr().out
    assert OutboxMessage.objects.count() == 0


@pytest.mark.promise("P12")
def test_the_daily_job_applies_every_rule(db):

    to_outbox("Old", "ada@example.org")
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(days=31))
    result = apply_retention()
    assert result["local outbox"] == 1
    assert {"unconfirmed registrations", "kept for a legal reason: invoices"} <= set(result)
