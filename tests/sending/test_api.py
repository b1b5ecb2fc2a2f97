"""Campaign sending through the API, scoped to the key's account."""

from __future__ import annotations

import pytest

from tests.sending.conftest import add_contacts
from tidings.accounts import apikeys

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def call(client, key: str, method: str, path: str, **json: object):  # type: ignore[no-untyped-def]
    return getattr(client, method)(
        f"/api/v1{path}", data=json or None, content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip


def test_send_and_follow_a_campaign_through_the_api(
    client, customer, account, newsletter, campaign, relay, smtp_server
):
    key = apikeys.create_api_key(account, name="ci", by=customer)[1]
    add_contacts(account, newsletter, 2)
    response = call(client, key, "post", f"/campaigns/{campaign.uuid}/send")
    assert response.status_code == 200 and response.json()["sent"] == 2
    assert call(client, key, "post", f"/campaigns/{campaign.uuid}/pause").status_code == 409
    progress = call(client, key, "get", f"/campaigns/{campaign.uuid}/progress").json()
    assert progress["status"] == "sent" and progress["remaining"] == 0


def test_schedule_through_the_api_needs_a_future_time(
    client, customer, account, newsletter, campaign
):
    add_contacts(account, newsletter, 1)
    key = apikeys.create_api_key(account, name="ci", by=customer)[1]
    path = f"/campaigns/{campaign.uuid}/schedule"
    assert call(client, key, "post", path, at="2001-01-01T00:00:00Z").status_code == 422
    response = call(client, key, "post", path, at="2099-01-01T09:00:00+01:00")
    assert response.status_code == 200 and response.json()["status"] == "scheduled"


def test_another_accounts_campaign_is_404_and_untouched(client, other_customer, campaign):
    key = apikeys.create_api_key(other_customer.account, name="x", by=other_customer)[1]
    for action in ("send", "pause", "resume", "cancel"):
        assert call(client, key, "post", f"/campaigns/{campaign.uuid}/{action}").status_code == 404
    assert call(client, key, "get", f"/campaigns/{campaign.uuid}/progress").status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == "draft"
