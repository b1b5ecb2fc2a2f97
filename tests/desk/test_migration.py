"""The migration that brought the sender's verdict and the SLA clocks: conversations
opened before it keep their customer's tie and get clocks from their own history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.migrating import migrate, migrate_to_latest
from tidings.desk import search
from tidings.desk.models import Conversation as Current

BEFORE = [("desk", "0002_ratings")]
AFTER = [("desk", "0003_sender_verified_and_sla")]
OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_old_conversations_keep_their_tie_and_get_clocks(transactional_db, customer, settings):
    settings.DESK = {**settings.DESK, "first_response_hours": 8, "resolution_hours": 72}
    old = migrate(BEFORE)
    try:
        Conversation = old.get_model("desk", "Conversation")
        Message = old.get_model("desk", "Message")
        Queue = old.get_model("desk", "Queue")
        queue = Queue.objects.create(name="Support", is_default=True)
        theirs = Conversation.objects.create(
            account_id=customer.account_id, user_id=customer.pk, email=customer.email,
            queue=queue, channel="mail", status="waiting", created_at=OPENED,
            updated_at=OPENED + timedelta(hours=3),
        )  # fmt: skip
        Message.objects.create(
            conversation=theirs, direction="out", channel="mail",
            created_at=OPENED + timedelta(hours=3),
        )  # fmt: skip
        visitor = Conversation.objects.create(
            email="someone@example.net", queue=queue, channel="form", created_at=OPENED,
            updated_at=OPENED,
        )  # fmt: skip
        new = migrate(AFTER).get_model("desk", "Conversation")
        theirs, visitor = new.objects.get(pk=theirs.pk), new.objects.get(pk=visitor.pk)
        assert theirs.sender_verified and not visitor.sender_verified
        assert theirs.first_response_due_at == OPENED + timedelta(hours=8)
        assert theirs.resolution_due_at == OPENED + timedelta(hours=72)
        assert theirs.first_response_at == OPENED + timedelta(hours=3)
        assert theirs.paused_at == OPENED + timedelta(hours=3)
        assert visitor.first_response_at is None and visitor.paused_at is None
    finally:
        migrate_to_latest()


def test_conversations_from_before_the_search_index_are_indexed(transactional_db):
    old = migrate([("desk", "0003_sender_verified_and_sla")])
    try:
        Conversation = old.get_model("desk", "Conversation")
        Message = old.get_model("desk", "Message")
        Queue = old.get_model("desk", "Queue")
        queue = Queue.objects.create(name="Support", is_default=True)
        conversation = Conversation.objects.create(
            email="someone@example.net", queue=queue, channel="mail", subject="Old invoice",
            created_at=OPENED, updated_at=OPENED,
        )  # fmt: skip
        Message.objects.create(
            conversation=conversation, direction="in", channel="mail", body="The wombat plan",
            created_at=OPENED,
        )  # fmt: skip
        migrate([("desk", "0005_search_index")])
        for words in ("wombat", "invoice"):
            found = search.matching(words, with_notes=False)
            assert found is not None
            assert list(Current.objects.filter(found).values_list("pk", flat=True)) == [
                conversation.pk
            ]
    finally:
        migrate_to_latest()
