"""Outgoing webhooks against a real HTTP server on loopback (allowed explicitly, as an
operator would): events from every path, signed per Standard Webhooks, retried with
backoff, logged, an endpoint that keeps failing disabled and its account told; the
platform's own network refused when saved and again at each delivery; redirects are
not followed; nothing for a closed or restricted account, nothing about a restricted
contact."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.automations.webhook_receiver import Receiver, verify
from tidings.accounts import services as accounts
from tidings.audience import restriction
from tidings.audience import services as audience
from tidings.automations import engine, services, webhooks
from tidings.automations.models import Step, WebhookEndpoint, WebhookMessage
from tidings.core import retention

W = WebhookMessage.Status
EVENTS = ["contact.subscribed", "contact.unsubscribed"]


@pytest.fixture
def endpoint(account, customer, receiver) -> WebhookEndpoint:  # type: ignore[no-untyped-def]
    return webhooks.create_endpoint(account, url=receiver.url, events=EVENTS, by=customer)


def test_events_reach_the_endpoint_signed_once_each(
    account, newsletter, endpoint, receiver, mailbox
):
    ada = audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 1
    assert webhooks.deliver_due(now) == 1
    audience.unsubscribe(ada)
    later = now + timedelta(seconds=2)
    webhooks.scan(later)
    webhooks.scan(later)  # a second beat finds nothing new
    webhooks.deliver_due(later)
    assert [b["type"] for b in receiver.bodies()] == EVENTS
    assert receiver.bodies()[0]["data"]["contact"]["email"] == "ada@example.net"
    assert receiver.bodies()[0]["data"]["list"]["name"] == "Newsletter"
    for path, headers, body in receiver.requests:
        assert path == "/hooks?from=tidings"
        assert verify(endpoint.secret, headers, body)
        assert headers["webhook-id"].startswith("msg_")
        assert abs(int(headers["webhook-timestamp"]) - now.timestamp()) < 60
    assert not verify("whsec_" + base64.b64encode(b"x" * 24).decode(), *receiver.requests[0][1:])
    log = WebhookMessage.objects.order_by("pk")
    assert [(m.status, m.response_code, m.attempts) for m in log] == [(W.DELIVERED, 200, 1)] * 2


def test_a_new_endpoint_is_told_nothing_of_what_happened_before_it(
    account, customer, newsletter, receiver
):
    """The scan looks back over its cursor (rows committed late), never before the
    endpoint was made: a subscription a minute earlier is not told."""
    audience.add_contact(account, "before@example.net", lists=[newsletter])
    later = timezone.now() + timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        endpoint = webhooks.create_endpoint(account, url=receiver.url, events=EVENTS, by=customer)
        audience.add_contact(account, "after@example.net", lists=[newsletter])
        now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 1
    webhooks.deliver_due(now)
    assert [b["data"]["contact"]["email"] for b in receiver.bodies()] == ["after@example.net"]
    assert endpoint.created_at > later - timedelta(seconds=1)


def test_failures_are_retried_with_backoff_then_the_endpoint_is_disabled_and_told(
    account, newsletter, endpoint, receiver, mailbox
):
    receiver.codes = [500] * 100
    for i in range(webhooks.DISABLE_AFTER):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    first = WebhookMessage.objects.order_by("pk").first()
    assert first is not None
    assert (first.status, first.response_code, first.attempts) == (W.PENDING, 500, 1)
    assert first.next_attempt_at == now + timedelta(seconds=webhooks.BACKOFF[0])
    assert "500" in first.last_error
    webhooks.deliver_due(now + timedelta(seconds=1))
    assert len(receiver.requests) == webhooks.DISABLE_AFTER  # nothing due before its time
    moment = now
    for wait in webhooks.BACKOFF:
        moment += timedelta(seconds=wait)
        webhooks.deliver_due(moment)
    assert len(receiver.requests) == webhooks.DISABLE_AFTER * (len(webhooks.BACKOFF) + 1)
    assert set(WebhookMessage.objects.values_list("status", flat=True)) == {W.FAILED}
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason
    (told,) = [m for m in mailbox if "webhook" in m.subject.lower()]
    assert told.to == ["ada@example.org"] and endpoint.url in told.body
    # Disabled: new events wait; turned on again, it goes on from then.
    audience.add_contact(account, "late@example.net", lists=[newsletter])
    webhooks.scan(moment)
    assert not WebhookMessage.objects.filter(payload__data__contact__email="late@example.net")
    webhooks.enable(endpoint, by=None)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failures == 0


def test_a_redirect_is_not_followed(account, newsletter, endpoint, receiver):
    receiver.codes = [302]
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    assert [path for path, _, _ in receiver.requests] == ["/hooks?from=tidings"]
    message = WebhookMessage.objects.get()
    assert (message.status, message.response_code) == (W.PENDING, 302)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "ftp://example.org/hook",
        "https://user:pw@example.org/hook",
        "not a url",
    ],
)
def test_the_platforms_own_network_and_bad_urls_are_refused(account, customer, url):
    with pytest.raises(webhooks.WebhookError):
        webhooks.create_endpoint(account, url=url, events=EVENTS, by=customer)
    assert not WebhookEndpoint.objects.exists()


def test_no_event_is_refused(account, customer, receiver):
    with pytest.raises(webhooks.WebhookError, match="event"):
        webhooks.create_endpoint(account, url=receiver.url, events=[], by=customer)
    with pytest.raises(webhooks.WebhookError, match="event"):
        webhooks.create_endpoint(account, url=receiver.url, events=["everything"], by=customer)
    assert not WebhookEndpoint.objects.exists()


def test_each_delivery_checks_the_address_again(account, newsletter, endpoint, receiver, settings):
    settings.ALLOWED_WEBHOOK_HOSTS = []  # the operator no longer allows loopback
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    assert receiver.requests == []
    message = WebhookMessage.objects.get()
    assert message.status == W.PENDING and "127.0.0.1" in message.last_error


def test_erasing_a_contact_erases_the_events_about_them(account, newsletter, endpoint):
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    webhooks.scan(timezone.now() + timedelta(seconds=1))
    assert WebhookMessage.objects.filter(contact=ada).exists()
    audience.erase_contact(ada)
    assert not WebhookMessage.objects.exists()


def test_the_pages_add_an_endpoint_and_show_its_log(
    client, customer, other_customer, account, newsletter, receiver
):
    client.force_login(customer)
    answer = client.post(
        reverse("automations:webhooks"), {"url": "https://10.1.2.3/x", "events": EVENTS}
    )
    assert answer.status_code == 200 and not WebhookEndpoint.objects.exists()
    answer = client.post(reverse("automations:webhooks"), {"url": receiver.url, "events": EVENTS})
    endpoint = WebhookEndpoint.objects.get()
    page = reverse("automations:webhook", args=[endpoint.uuid])
    assert answer["Location"] == page
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    text = client.get(page).content.decode()
    assert endpoint.secret in text and "contact.subscribed" in text and "200" in text
    client.force_login(other_customer)
    assert client.get(page).status_code == 404
    assert client.post(page, {"action": "delete"}).status_code == 404
    assert WebhookEndpoint.objects.exists()


def test_the_endpoint_form_says_what_this_installation_accepts(client, customer, settings):
    """It said "https only" where the operator allows plain http to a host (a local
    receiver). A network allowed by CIDR takes https only (`webhooks.http_hosts`); the
    hosts are not named to customers (the operator's internal names)."""
    client.force_login(customer)
    url = reverse("automations:webhooks")
    settings.ALLOWED_WEBHOOK_HOSTS = ["10.0.5.0/24"]
    assert "https only;" in client.get(url).content.decode()
    settings.ALLOWED_WEBHOOK_HOSTS = ["127.0.0.1", "hooks.internal", "10.0.5.0/24"]
    text = client.get(url).content.decode()
    assert "https only" not in text
    assert "https, or plain http to a host the operator of this installation allows;" in text
    assert "127.0.0.1" not in text and "hooks.internal" not in text
    answer = client.post(url, {"url": "http://127.0.0.1:9/hook", "events": EVENTS})
    assert answer.status_code == 302 and WebhookEndpoint.objects.get().url.startswith("http:")


def test_an_automation_step_done_is_told(account, newsletter, welcome, customer, receiver, mailbox):
    endpoint = webhooks.create_endpoint(
        account, url=receiver.url, events=["automation.step_done"], by=customer
    )
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    engine.run(now)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    ((_, headers, body),) = receiver.requests
    assert verify(endpoint.secret, headers, body)
    data = json.loads(body)["data"]
    assert data["automation"]["name"] == "Welcome" and data["step"] == 1
    assert data["contact"]["email"] == "ada@example.net"


def test_a_step_done_on_a_moved_test_clock_is_told_all_the_same(
    account, newsletter, welcome, customer, receiver, test_clock
):
    # The clock decides what is due; the step's record keeps the real time, which the
    # scan reads (docs/automations.md, "The test clock").
    webhooks.create_endpoint(
        account, url=receiver.url, events=["automation.step_done"], by=customer
    )
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    for days in (1, 3):  # the first step, then the second two days after it
        test_clock.advance(timedelta(days=days))
        engine.run()
    real = timezone.now() + timedelta(seconds=1)
    webhooks.scan(real)
    webhooks.deliver_due(real)
    steps = sorted(json.loads(body)["data"]["step"] for _, _, body in receiver.requests)
    assert steps == [1, 2]


def test_a_condition_step_done_tells_whether_it_was_met(account, newsletter, customer, receiver):
    webhooks.create_endpoint(
        account, url=receiver.url, events=["automation.step_done"], by=customer
    )
    flow = services.create_automation(account, name="VIP", mailing_list=newsletter, by=customer)
    services.add_step(flow, kind=Step.Kind.CONDITION, test="has_tag", key="vip", by=customer)
    services.add_step(flow, kind=Step.Kind.ADD_TAG, tag="welcomed", by=customer)
    services.start(flow, by=customer)
    audience.add_contact(account, "ada@example.net", tags=["vip"], lists=[newsletter])
    audience.add_contact(account, "bob@example.net", lists=[newsletter])  # not met: leaves
    now = timezone.now() + timedelta(seconds=1)
    engine.run(now)
    webhooks.scan(now)
    webhooks.deliver_due(now)
    told = sorted(
        (b["data"]["contact"]["email"], b["data"]["step"], b["data"].get("condition_met", "-"))
        for b in receiver.bodies()
    )
    assert told == [
        ("ada@example.net", 1, True),
        ("ada@example.net", 2, "-"),  # not a condition: no outcome
        ("bob@example.net", 1, False),
    ]


@pytest.mark.promise("P12")
def test_the_delivery_log_is_kept_thirty_days_then_deleted(account, newsletter, endpoint):
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    audience.add_contact(account, "bob@example.net", lists=[newsletter])
    webhooks.scan(timezone.now() + timedelta(seconds=1))
    done, waiting = WebhookMessage.objects.order_by("pk")
    WebhookMessage.objects.filter(pk=done.pk).update(status=W.DELIVERED)
    later = timezone.now() + timedelta(days=31)
    assert retention.run("webhook messages", now=timezone.now() + timedelta(days=29)) == 0
    assert retention.run("webhook messages", now=later) == 1
    assert list(WebhookMessage.objects.values_list("pk", flat=True)) == [waiting.pk]


def delivered_emails(receiver: Receiver) -> list[str]:
    return [b["data"]["contact"]["email"] for b in receiver.bodies()]


@pytest.mark.promise("P21")
def test_a_closed_account_gets_no_more_webhooks(account, customer, newsletter, endpoint, receiver):
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 1  # written, not delivered yet
    audience.add_contact(account, "bob@example.net", lists=[newsletter])
    accounts.close_account(account, by=customer)
    later = now + timedelta(seconds=2)
    assert webhooks.scan(later) == 0
    assert webhooks.deliver_due(later) == 0
    assert receiver.requests == []
    assert WebhookMessage.objects.get().status == W.PENDING


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
def test_a_restricted_account_gets_no_webhooks_until_the_restriction_is_lifted(
    account, customer, newsletter, endpoint, receiver
):
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 1
    accounts.restrict_account(account, by=customer, reason="a dispute")
    audience.unsubscribe(ada)  # an objection is effective at once, restricted or not
    later = now + timedelta(seconds=2)
    assert webhooks.scan(later) == 0
    assert webhooks.deliver_due(later) == 0
    assert receiver.requests == []
    # Lifted by the customer: what waited goes, in order.
    accounts.lift_account_restriction(account, by=customer)
    latest = later + timedelta(seconds=2)
    assert webhooks.scan(latest) == 1
    assert webhooks.deliver_due(latest) == 2
    assert [b["type"] for b in receiver.bodies()] == EVENTS


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
def test_a_restricted_contact_is_in_no_webhook(account, newsletter, endpoint, receiver):
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 1  # ada's subscription, written before her restriction
    restriction.restrict(ada, reason="she disputes the data")
    audience.add_contact(account, "bob@example.net", lists=[newsletter])
    audience.unsubscribe(ada)
    later = now + timedelta(seconds=2)
    assert webhooks.scan(later) == 1  # bob's subscription only
    assert webhooks.deliver_due(later) == 1
    assert delivered_emails(receiver) == ["bob@example.net"]
    assert not WebhookMessage.objects.filter(contact=ada, status=W.DELIVERED)
