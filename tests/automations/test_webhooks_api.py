"""The webhooks' HTTP API: endpoints added, read (with their secret), changed, rotated,
turned on again, deleted; their delivery log; a test event to a real receiver. The
platform's own network is refused as by the web form, another account's endpoint is a
404, bad input a 422 with `detail`, and a refusal writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.automations.webhook_receiver import Receiver, verify
from tidings.audience import services as audience
from tidings.automations import webhooks
from tidings.automations.models import WebhookEndpoint, WebhookMessage
from tidings.staff.models import AuditEvent

EVENTS = ["contact.subscribed", "contact.updated"]


def test_an_endpoint_is_added_read_changed_rotated_and_deleted(api, receiver: Receiver):
    made = api("post", "/webhooks", {"url": receiver.url, "events": EVENTS})
    assert made.status_code == 201, made.content
    body = made.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body["secret"] == endpoint.secret and body["secret"].startswith("whsec_")
    assert body["events"] == sorted(EVENTS) and body["enabled"]
    path = f"/webhooks/{body['uuid']}"
    assert api("get", path).json()["secret"] == endpoint.secret
    listed = api("get", "/webhooks").json()["items"]
    assert [e["uuid"] for e in listed] == [body["uuid"]] and "secret" not in listed[0]
    changed = api("patch", path, {"events": ["contact.opened"]})
    assert changed.status_code == 200 and changed.json()["events"] == ["contact.opened"]
    assert changed.json()["url"] == receiver.url
    rotated = api("post", f"{path}/secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] != endpoint.secret
    endpoint.refresh_from_db()
    assert endpoint.secret == rotated.json()["secret"]
    assert AuditEvent.objects.filter(target_type__icontains="webhookendpoint").count() == 3
    assert api("delete", path).status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert api("get", path).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "http://example.org/hook",
        "https://user:pw@example.org/hook",
        "https://example.org/a b",
        "not a url",
    ],
)
def test_the_platforms_own_network_and_bad_addresses_are_refused(api, url):
    answer = api("post", "/webhooks", {"url": url, "events": EVENTS})
    assert answer.status_code == 422 and answer.json()["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_bad_input_is_a_422_that_says_why_and_changes_nothing(api, receiver):
    for body in (
        {"url": receiver.url, "events": []},
        {"url": receiver.url, "events": ["everything"]},
        {"url": receiver.url},
        {"events": EVENTS},
        {"url": receiver.url + "\x00", "events": EVENTS},
        {"url": "https://example.org/" + "a" * 600, "events": EVENTS},
    ):
        answer = api("post", "/webhooks", body)
        assert answer.status_code == 422, (body, answer.content)
        assert answer.json()["detail"]
    assert not WebhookEndpoint.objects.exists()
    made = api("post", "/webhooks", {"url": receiver.url, "events": EVENTS}).json()
    path = f"/webhooks/{made['uuid']}"
    for body in (
        {"url": "https://10.1.2.3/x"},
        {"events": ["contact.everything"]},
        {"events": []},
    ):
        answer = api("patch", path, body)
        assert answer.status_code == 422 and answer.json()["detail"], body
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.events) == (receiver.url, sorted(EVENTS))
    assert api("get", "/webhooks/not-a-uuid").status_code == 422
    assert api("get", path + "/messages?limit=0").status_code == 422


def test_another_accounts_endpoint_is_a_404_everywhere(api, other_api, receiver):
    theirs = other_api("post", "/webhooks", {"url": receiver.url, "events": EVENTS}).json()
    endpoint = WebhookEndpoint.objects.get()
    path = f"/webhooks/{theirs['uuid']}"
    for method, route, body in (
        ("get", path, None),
        ("patch", path, {"url": "https://example.org/mine"}),
        ("delete", path, None),
        ("post", f"{path}/secret", None),
        ("post", f"{path}/enable", None),
        ("post", f"{path}/test", None),
        ("get", f"{path}/messages", None),
    ):
        answer = api(method, route, body)
        assert answer.status_code == 404 and answer.json()["detail"], (method, route)
    assert api("get", "/webhooks").json()["items"] == []
    after = WebhookEndpoint.objects.get()
    assert (after.url, after.secret) == (endpoint.url, endpoint.secret)
    assert not WebhookMessage.objects.exists()


def test_a_test_event_reaches_the_receiver_signed_and_shows_in_the_log(
    api, receiver, on_commit_runs
):
    made = api("post", "/webhooks", {"url": receiver.url, "events": EVENTS}).json()
    sent = api("post", f"/webhooks/{made['uuid']}/test")
    assert sent.status_code == 202 and sent.json()["event"] == "webhook.test"
    ((_, headers, body),) = receiver.requests
    assert verify(made["secret"], headers, body)
    assert headers["webhook-id"] == sent.json()["id"]
    (logged,) = api("get", f"/webhooks/{made['uuid']}/messages").json()["items"]
    assert (logged["status"], logged["response_code"], logged["waiting"]) == (
        "delivered",
        200,
        False,
    )


def test_a_disabled_endpoint_is_turned_on_again(api, receiver, account, newsletter):
    made = api("post", "/webhooks", {"url": receiver.url, "events": EVENTS}).json()
    WebhookEndpoint.objects.update(enabled=False, disabled_reason="5 in a row", failures=5)
    turned = api("post", f"/webhooks/{made['uuid']}/enable")
    assert turned.status_code == 200
    assert (turned.json()["enabled"], turned.json()["disabled_reason"]) == (True, "")
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    assert [b["type"] for b in receiver.bodies()] == ["contact.subscribed"]
    (logged,) = api("get", f"/webhooks/{made['uuid']}/messages").json()["items"]
    assert logged["event"] == "contact.subscribed" and logged["attempts"] == 1
