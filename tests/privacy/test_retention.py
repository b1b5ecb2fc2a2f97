"""Data is kept while the relation lasts, and no longer (P12)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import UserFactory
from tidings.accounts.models import Account, User
from tidings.accounts.tasks import purge_unconfirmed_signups
from tidings.outbox.backend import OutboxBackend
from tidings.outbox.models import OutboxMessage
from tidings.outbox.tasks import purge_old_messages


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
    OutboxBackend().send_messages([mail.EmailMessage("Hello", "Body", to=["ada@example.org"])])
    message = OutboxMessage.objects.get()
    assert "ada@example.org" in message.recipients and "Hello" in message.raw
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now() - timedelta(days=31))
    OutboxBackend().send_messages([mail.EmailMessage("Fresh", "Body", to=["bob@example.org"])])
    assert purge_old_messages() == 1
    assert list(OutboxMessage.objects.values_list("subject", flat=True)) == ["Fresh"]
