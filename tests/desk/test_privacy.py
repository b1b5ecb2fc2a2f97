"""The desk's data in the data map: in My Account and the archive (P15, P20), erased
with the account (P13, P17), deleted after the retention period once solved (P12), and
encrypted at rest with key rotation (P8)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tidings.core import retention
from tidings.core.fields import _fernet
from tidings.desk import attachments, services
from tidings.desk.models import Attachment, Conversation, Message

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e226059b0000000049454e44ae426082"
)


def open_one(customer) -> Conversation:  # type: ignore[no-untyped-def]
    return services.open_conversation(
        user=customer,
        subject="Billing question",
        body="My secret question",
        attachments=[attachments.accept("shot.png", PNG)],
    )


@pytest.mark.promise("P15")
def test_my_account_shows_the_conversations(client, customer, on_commit_runs):
    open_one(customer)
    client.force_login(customer)
    page = client.get(reverse("accounts:my_account"))
    assert "Billing question" in page.text and "My secret question" in page.text
    assert "shot.png" in page.text


@pytest.mark.promise("P8")
def test_bodies_and_attachments_are_encrypted_at_rest_and_rotated(customer, settings, db):
    open_one(customer)
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM desk_message")
        (stored,) = cursor.fetchone()
        cursor.execute("SELECT data FROM desk_attachment")
        (data,) = cursor.fetchone()
    assert "secret" not in stored
    assert b"PNG" not in bytes(data)
    old = settings.FIELD_ENCRYPTION_KEYS
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    _fernet.cache_clear()
    call_command("rotatekeys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # old key dropped
    _fernet.cache_clear()
    try:
        assert Message.objects.get().body == "My secret question"
        assert bytes(Attachment.objects.get().data) == PNG
    finally:
        settings.FIELD_ENCRYPTION_KEYS = old
        _fernet.cache_clear()


@pytest.mark.promise("P12")
def test_solved_conversations_go_after_the_retention_period(customer, staff, settings, db):
    kept = open_one(customer)
    old = open_one(customer)
    services.set_status(old, status=Conversation.Status.SOLVED, by=staff)
    services.set_status(kept, status=Conversation.Status.SOLVED, by=staff)
    Conversation.objects.filter(pk=old.pk).update(solved_at=timezone.now() - timedelta(days=740))
    assert retention.run("solved support conversations") == 1
    assert list(Conversation.objects.all()) == [kept]
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    settings.DESK = {**settings.DESK, "retention_months": 1}
    Conversation.objects.filter(pk=kept.pk).update(solved_at=timezone.now() - timedelta(days=40))
    assert retention.run("solved support conversations") == 1


def test_open_conversations_are_never_deleted_by_retention(customer, db):
    conversation = open_one(customer)
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=timezone.now() - timedelta(days=3000)
    )
    assert retention.run("solved support conversations") == 0
