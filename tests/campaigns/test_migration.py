"""The migration that made the database hold a campaign's end: a campaign from before it
that ended without one gets its last change as its end, and one that did not end loses
an end it should not have, so that every click link's days count from a real end."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.migrating import migrate, migrate_to_latest

BEFORE = [("campaigns", "0006_visual_design")]
AFTER = [("campaigns", "0007_campaign_finished_when_ended")]
CHANGED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ENDED = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def test_campaigns_from_before_get_an_end_exactly_when_they_ended(transactional_db, customer):
    old = migrate(BEFORE)
    try:
        Campaign = old.get_model("campaigns", "Campaign")
        made = {
            (status, ended): Campaign.objects.create(
                account_id=customer.account_id, name=status, subject="s",
                from_email="a@example.org", status=status, finished_at=ended,
            ).pk
            for status, ended in [
                ("sent", None), ("cancelled", None), ("sent", ENDED), ("cancelled", ENDED),
                ("sending", ENDED), ("paused", ENDED), ("draft", None),
            ]
        }  # fmt: skip
        Campaign.objects.filter(pk__in=made.values()).update(updated_at=CHANGED)
        new = migrate(AFTER).get_model("campaigns", "Campaign")
        ends = dict(new.objects.filter(pk__in=made.values()).values_list("pk", "finished_at"))
        assert ends[made["sent", None]] == CHANGED
        assert ends[made["cancelled", None]] == CHANGED
        # An end it had stays as it was; one it should not have goes.
        assert ends[made["sent", ENDED]] == ENDED
        assert ends[made["cancelled", ENDED]] == ENDED
        assert ends[made["sending", ENDED]] is None
        assert ends[made["paused", ENDED]] is None
        assert ends[made["draft", None]] is None
    finally:
        migrate_to_latest()
