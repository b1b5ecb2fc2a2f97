"""Campaigns through the HTTP API: write, change (draft only), preview, test, send,
schedule, pause, resume, cancel and report, all scoped to the key's account; bad input
is refused with a clear message and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sending.conftest import POSTAL_ADDRESS
from tidings.accounts import apikeys
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign, Layout
from tidings.sending import services as sending
from tidings.sending.models import Relay, SendingSettings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

NEW = {
    "name": "December news",
    "subject": "Hello {{ contact.first_name }}",
    "from_email": "news@news.example.org",
    "from_name": "Example News",
    "body": "Dear {{ contact.name }}, **rye** is back.",
}


class Api:
    def __init__(self, client: Any, key: str) -> None:
        self.client, self.key = client, key

    def __call__(self, method: str, path: str, json: Any = None, **query: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        if method == "get":
            return self.client.get(f"/api/v1{path}", query, headers=headers)
        return getattr(self.client, method)(
            f"/api/v1{path}", data=json, content_type="application/json", headers=headers
        )


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    sending.set_postal_address(customer.account, POSTAL_ADDRESS, by=customer)
    return customer.account


@pytest.fixture
def api(client, customer, account) -> Api:  # type: ignore[no-untyped-def]
    return Api(client, apikeys.create_api_key(account, name="ci", by=customer)[1])


@pytest.fixture
def other_api(client, other_customer) -> Api:  # type: ignore[no-untyped-def]
    key = apikeys.create_api_key(other_customer.account, name="x", by=other_customer)[1]
    return Api(client, key)


@pytest.fixture
def newsletter(account) -> MailingList:  # type: ignore[no-untyped-def]
    news = MailingList.objects.create(account=account, name="Newsletter")
    for i in range(3):
        audience.add_contact(account, f"r{i}@example.net", name=f"Reader {i}", lists=[news])
    return news


def test_write_preview_test_send_and_report_a_campaign(
    api, account, newsletter, smtp_server, mailoutbox
):
    Relay.objects.create(
        account=account, name="t", host=smtp_server.host, port=smtp_server.port, security="none"
    )
    created = api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "draft" and body["lists"] == [str(newsletter.uuid)]
    path = f"/campaigns/{body['uuid']}"

    changed = api("patch", path, {"subject": "Hi {{ contact.first_name }}", "track_opens": True})
    assert changed.status_code == 200
    assert changed.json()["subject"] == "Hi {{ contact.first_name }}"
    assert changed.json()["track_opens"] is True and changed.json()["name"] == NEW["name"]

    listed = api("get", "/campaigns").json()
    assert [c["uuid"] for c in listed["items"]] == [body["uuid"]]
    assert api("get", path).json()["subject"] == "Hi {{ contact.first_name }}"

    reader = newsletter.subscriptions.order_by("pk").first().contact
    preview = api("get", f"{path}/preview", contact=str(reader.uuid)).json()
    assert preview["subject"] == "Hi Reader" and "<strong>rye</strong>" in preview["html"]
    assert "Dear Reader 0" in preview["text"]
    assert api("get", f"{path}/preview").json()["subject"] == "Hi Alex"

    tested = api("post", f"{path}/test", {"to": ["me@example.org"], "contact": str(reader.uuid)})
    assert tested.status_code == 200 and tested.json() == {"sent": 1}
    # Tests go through the account's relay, as the campaign does.
    tests = [m["Subject"] for m in smtp_server.to("me@example.org")]
    assert tests == ["[Test] Hi Reader"]

    sent = api("post", f"{path}/send")
    assert sent.status_code == 200 and sent.json()["sent"] == 3
    campaign_to = sorted(m["To"] for m in smtp_server.messages if m["To"] != "me@example.org")
    assert campaign_to == [f"r{i}@example.net" for i in range(3)]
    figures = api("get", f"{path}/report").json()
    assert figures["status"] == "sent" and figures["sent"] == 3 and figures["delivered"] == 3
    assert figures["remaining"] == 0 and figures["bounced"] == 0
    # A sent campaign no longer changes.
    refused = api("patch", path, {"subject": "Oops"})
    assert refused.status_code == 409 and "only a draft" in refused.json()["detail"]
    assert Campaign.objects.get().subject == "Hi {{ contact.first_name }}"


def test_schedule_pause_resume_and_cancel(api, account, newsletter):
    created = api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]}).json()
    path = f"/campaigns/{created['uuid']}"
    at = "2099-03-01T09:30:00+01:00"
    scheduled = api("post", f"{path}/schedule", {"at": at, "timezone": "Europe/Paris"})
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    campaign = Campaign.objects.get()
    assert campaign.scheduled_at.isoformat() == "2099-03-01T08:30:00+00:00"
    assert campaign.schedule_timezone == "Europe/Paris"
    assert api("patch", path, {"name": "x"}).status_code == 409
    assert api("post", f"{path}/pause").status_code == 409
    # Sending is left to the workers here: pause and resume a sending campaign.
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    assert api("post", f"{path}/pause").json()["status"] == "paused"
    assert api("post", f"{path}/cancel").json()["status"] == "cancelled"
    assert api("post", f"{path}/resume").status_code == 409


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"body": "Hello {{ contact.name "}, "body"),
        ({"subject": "{% include 'x' %}"}, "subject"),
        ({"from_email": "not an address"}, "from_email"),
        ({"content_format": "pdf"}, ""),
        ({"name": ""}, ""),
        ({"unknown_field": 1, "name": None}, ""),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_changes_nothing(api, account, change, detail):
    created = api("post", "/campaigns", {**NEW, **change})
    assert created.status_code == 422
    assert detail in str(created.json()["detail"])
    assert not Campaign.objects.exists()
    draft = api("post", "/campaigns", NEW).json()
    changed = api("patch", f"/campaigns/{draft['uuid']}", change)
    if "unknown_field" in change:
        return  # extra fields are ignored; a null name is "not given"
    assert changed.status_code == 422 and detail in str(changed.json()["detail"])
    assert api("get", f"/campaigns/{draft['uuid']}").json() == draft


def test_bad_schedules_and_tests_are_refused(api, account, newsletter):
    draft = api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]}).json()
    path = f"/campaigns/{draft['uuid']}"
    for payload in (
        {"at": "2099-03-01T09:30:00"},
        {"at": "2001-03-01T09:30:00Z"},
        {"at": "2099-03-01T09:30:00Z", "timezone": "Mars/Olympus"},
        {"at": "soon"},
    ):
        response = api("post", f"{path}/schedule", payload)
        assert response.status_code == 422, payload
    for payload in ({"to": []}, {"to": ["nobody"]}, {"to": [f"a{i}@x.org" for i in range(6)]}):
        assert api("post", f"{path}/test", payload).status_code == 422, payload
    assert Campaign.objects.get().status == "draft"


def test_without_a_postal_address_the_api_sends_nothing(api, account, newsletter):

    SendingSettings.objects.filter(account=account).update(postal_address="")
    draft = api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]}).json()
    response = api("post", f"/campaigns/{draft['uuid']}/send")
    assert response.status_code == 409 and "postal address" in response.json()["detail"]
    assert Campaign.objects.get().status == "draft"


def test_another_accounts_campaigns_lists_and_contacts_are_404(
    api, other_api, account, other_customer, newsletter
):
    draft = api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]}).json()
    path = f"/campaigns/{draft['uuid']}"
    assert other_api("get", "/campaigns").json()["items"] == []
    assert other_api("get", path).status_code == 404
    assert other_api("patch", path, {"name": "mine"}).status_code == 404
    assert other_api("get", f"{path}/preview").status_code == 404
    assert other_api("get", f"{path}/report").status_code == 404
    assert other_api("post", f"{path}/test", {"to": ["me@example.org"]}).status_code == 404
    for action in ("send", "pause", "resume", "cancel"):
        assert other_api("post", f"{path}/{action}").status_code == 404
    at = {"at": "2099-01-01T00:00:00Z"}
    assert other_api("post", f"{path}/schedule", at).status_code == 404
    # Nor can one account use another's list, layout or contact in its own campaign.
    theirs = other_api("post", "/campaigns", NEW).json()
    assert (
        other_api("post", "/campaigns", {**NEW, "lists": [str(newsletter.uuid)]}).status_code == 404
    )
    layout = Layout.objects.create(account=account, name="L", html="<p>{{ content }}</p>")
    assert (
        other_api("patch", f"/campaigns/{theirs['uuid']}", {"layout": layout.pk}).status_code == 404
    )
    contact = newsletter.subscriptions.first().contact
    preview = other_api("get", f"/campaigns/{theirs['uuid']}/preview", contact=str(contact.uuid))
    assert preview.status_code == 404
    assert Campaign.objects.get(uuid=draft["uuid"]).name == NEW["name"]
    assert Campaign.objects.get(uuid=draft["uuid"]).status == "draft"
    assert Campaign.objects.filter(account=other_customer.account).count() == 1
