"""Automations, A/B tests and outgoing webhooks probed as a hostile customer would:
other accounts' things by uuid, webhooks aimed at the platform's own network however
the address is spelt (a name that resolves there, numeric forms, IPv6 wrappers), and
bad input in every field. Each probe that found a hole is the test of its fix."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.automations.test_webhooks import EVENTS, Receiver
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.automations import services, splittests, webhooks
from tidings.automations.models import Automation, SplitTest, Step, WebhookEndpoint, WebhookMessage
from tidings.campaigns.models import Campaign


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def draft(account, newsletter) -> Campaign:  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        account=account, name="November", subject="News", from_email="news@news.example.org",
        body="<p>Hello {{ contact.name }}</p>",
    )  # fmt: skip
    campaign.lists.add(newsletter)
    return campaign


# The platform's own network, however it is spelt ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://vm/hook",  # a name that resolves to 127.0.0.1 (/etc/hosts)
        "https://VM./hook",
        "https://2130706433/hook",  # 127.0.0.1 as one number
        "https://0x7f.0.0.1/hook",
        "https://127.1/hook",
        "https://0177.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/latest",  # 169.254.169.254, IPv4-mapped
        "https://[fd00:ec2::254]/latest",
        "https://100.100.100.200/latest",  # a cloud's metadata, in shared address space
        "https://192.0.0.192/latest",
        "https://[::]/hook",
        "https://[fe80::1%25eth0]/hook",
        "http://example.org/hook",  # plain http
        "https://example.org/a b",  # a space the HTTP client would refuse at every try
        "https://example.org/a\r\nX-Injected: 1",
        "https://exa\tmple.org/hook",
        "https://example.org/\x00",
        "https://" + "a" * 300 + ".example.org/",
        "https://example.org/" + "a" * 600,  # longer than the column
        "",
        "//example.org/hook",
    ],
)
def test_an_endpoint_on_our_network_or_not_an_address_is_refused(account, customer, url):
    with pytest.raises(webhooks.WebhookError):
        webhooks.create_endpoint(account, url=url, events=EVENTS, by=customer)
    assert not WebhookEndpoint.objects.exists()


def test_a_stored_endpoint_whose_name_resolves_to_us_gets_nothing(account, newsletter, settings):
    settings.ALLOWED_WEBHOOK_HOSTS = []
    receiver = Receiver()
    try:
        # As if saved while the name resolved elsewhere (DNS changes; rebinding).
        port = receiver.server.server_address[1]
        WebhookEndpoint.objects.create(account=account, url=f"https://vm:{port}/", events=EVENTS)
        audience.add_contact(account, "ada@example.net", lists=[newsletter])
        now = timezone.now() + timedelta(seconds=1)
        webhooks.scan(now)
        assert webhooks.deliver_due(now) == 0
        assert receiver.requests == []
        message = WebhookMessage.objects.get()
        assert "127.0.0.1" in message.last_error
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class Trickler:
    """A real TCP server that answers 200 a byte at a time, each byte well within the
    read timeout: a slow endpoint holding the worker."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _address = self.sock.accept()
            with conn:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    conn.sendall(bytes([byte]))
                    time.sleep(self.delay)


def test_an_endpoint_answering_a_byte_at_a_time_is_cut_off(
    account, newsletter, customer, settings, monkeypatch
):
    settings.ALLOWED_WEBHOOK_HOSTS = ["127.0.0.1"]
    monkeypatch.setattr(webhooks, "ATTEMPT_SECONDS", 0.5)
    slow = Trickler(delay=0.1)  # each byte in time, the whole answer in about 4 s
    try:
        webhooks.create_endpoint(
            account, url=f"http://127.0.0.1:{slow.port}/", events=EVENTS, by=customer
        )
        audience.add_contact(account, "ada@example.net", lists=[newsletter])
        now = timezone.now() + timedelta(seconds=1)
        webhooks.scan(now)
        assert webhooks.deliver_due(now) == 0
        message = WebhookMessage.objects.get()
        assert message.status == WebhookMessage.Status.PENDING
        assert "within 0.5 seconds" in message.last_error
    finally:
        slow.sock.close()


# Other accounts' things ------------------------------------------------------------------


def test_another_accounts_endpoint_is_neither_seen_nor_changed(
    client, account, customer, other_customer, settings
):
    settings.ALLOWED_WEBHOOK_HOSTS = ["hooks.example.org"]
    theirs = webhooks.create_endpoint(
        account, url="https://hooks.example.org/x", events=EVENTS, by=customer
    )
    WebhookEndpoint.objects.filter(pk=theirs.pk).update(enabled=False)
    client.force_login(other_customer)
    url = reverse("automations:webhook", args=[theirs.uuid])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "delete"}).status_code == 404
    assert client.post(url, {"action": "enable"}).status_code == 404
    assert "hooks.example.org" not in client.get(reverse("automations:webhooks")).text
    theirs.refresh_from_db()
    assert not theirs.enabled


def test_another_accounts_ab_test_and_campaign_are_out_of_reach(
    client, account, newsletter, customer, other_customer
):
    mine = draft(account, newsletter)
    test = splittests.create_test(
        mine, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    client.force_login(other_customer)
    url = reverse("automations:split_test", args=[test.uuid])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "start"}).status_code == 404
    assert client.post(url, {"action": "choose", "label": "A"}).status_code == 404
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DRAFT
    other = draft(account, newsletter)  # a second draft of the first account
    form = {
        "campaign": other.pk, "kind": "subject", "subject_b": "B", "test_percent": 20,
        "metric": "opens", "timezone": "UTC",
    }  # fmt: skip
    answer = client.post(reverse("automations:split_tests"), {**form, "wait_hours": 1})
    assert answer.status_code == 200
    assert SplitTest.objects.count() == 1


def test_another_accounts_list_cannot_trigger_an_automation(customer, other_customer, account):
    from_them = MailingList.objects.create(account=other_customer.account, name="Theirs")
    with pytest.raises(services.AutomationError):
        services.create_automation(account, name="X", mailing_list=from_them, by=customer)
    assert not Automation.objects.exists()


# Bad input on the pages -------------------------------------------------------------------

STEP = {
    "wait_days": "0",
    "subject": "Welcome aboard",
    "from_email": "news@news.example.org",
    "body": "Hello {{ contact.name }}.",
}


@pytest.mark.parametrize(
    "change",
    [
        {"wait_days": "-1"},
        {"wait_days": "99999999999999999999"},
        {"wait_days": "1.5"},
        {"wait_days": "\x00"},
        {"subject": "a\x00b"},
        {"subject": "s" * 5000},
        {"body": "x\x00"},
        {"from_email": "news@\x00.example.org"},
    ],
)
def test_a_bad_step_changes_nothing(logged_in, account, newsletter, customer, change):
    automation = services.create_automation(
        account, name="Welcome", mailing_list=newsletter, by=customer
    )
    page = reverse("automations:detail", args=[automation.uuid])
    assert logged_in.post(page, {**STEP, **change}).status_code == 200
    assert not Step.objects.exists()


@pytest.mark.parametrize("name", ["a\x00b", "n" * 5000, "   "])
def test_a_bad_automation_name_changes_nothing(logged_in, account, newsletter, name):
    answer = logged_in.post(
        reverse("automations:new"), {"name": name, "mailing_list": newsletter.pk}
    )
    assert answer.status_code == 200
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"test_percent": "-20"},
        {"test_percent": "0"},
        {"test_percent": "101"},
        {"test_percent": "1e3"},
        {"wait_hours": "-4"},
        {"wait_hours": "0"},
        {"wait_hours": "100000"},
        {"subject_b": "\x00"},
        {"subject_b": "   "},
        {"subject_b": "s" * 5000},
        {"metric": "revenue"},
        {"kind": "colour"},
        {"kind": "from_name", "from_name_b": "a\x00b"},
        {"kind": "content", "variants": "9"},
        {"kind": "send_time", "send_time_a": "2001-01-01T09:00", "send_time_b": "2001-01-01T10:00"},
        {"kind": "send_time", "send_time_a": "\x00", "send_time_b": "tomorrow"},
        {"kind": "send_time", "send_time_a": "2030-01-01T09:00", "timezone": "Mars/Olympus"},
    ],
)
def test_a_bad_ab_test_changes_nothing(logged_in, account, newsletter, change):
    campaign = draft(account, newsletter)
    form = {
        "campaign": campaign.pk, "kind": "subject", "subject_b": "B", "test_percent": "20",
        "metric": "opens", "timezone": "UTC",
    }  # fmt: skip
    answer = logged_in.post(
        reverse("automations:split_tests"), {**form, "wait_hours": "4", **change}
    )
    assert answer.status_code == 200
    assert not SplitTest.objects.exists()
    assert Campaign.objects.count() == 1


def test_the_service_refuses_what_the_form_would(account, newsletter, customer):
    campaign = draft(account, newsletter)
    for bad in ({"test_percent": -5}, {"test_percent": 100}, {"wait_hours": -1}, {"metric": "x"}):
        args = {"subjects": ["B"], "test_percent": 20, "metric": "opens", "wait_hours": 1, **bad}
        with pytest.raises(splittests.SplitTestError):
            splittests.create_test(campaign, by=customer, **args)  # type: ignore[arg-type]
    with pytest.raises(services.AutomationError):
        automation = services.create_automation(
            account, name="W", mailing_list=newsletter, by=customer
        )
        services.add_step(
            automation, wait_days=-3, subject="s", from_email="a@news.example.org", by=customer
        )
    assert not SplitTest.objects.exists() and not Step.objects.exists()


# A tag the audience cannot store (a comma, more than 64 characters) ------------------------


@pytest.mark.parametrize("tag", ["new,customer", "t" * 65])
def test_a_tag_that_cannot_be_one_is_refused_with_the_reason_on_the_pages(
    logged_in, account, newsletter, customer, tag
):
    """It was a 500: the audience's refusal (`clean_tags`) escaped the step's checks."""
    automation = services.create_automation(
        account, name="Welcome", mailing_list=newsletter, by=customer
    )
    kept = services.add_step(automation, kind="add_tag", tag="welcomed", by=customer)
    page = reverse("automations:detail", args=[automation.uuid])
    for form in (
        {"op": "add", "kind": "add_tag", "tag": tag},
        {"op": "add", "kind": "remove_tag", "tag": tag},
        {"op": "add", "kind": "condition", "test": "has_tag", "key": tag},
        {"op": "edit", "step": kept.pk, "tag": tag},
        {"op": "trigger", "trigger-trigger": "tag_added", "trigger-trigger_tag": tag},
    ):
        answer = logged_in.post(page, form)
        assert answer.status_code == 200, form
        assert "is not a tag" in answer.content.decode(), form
    new = {"name": "Tagged", "mailing_list": newsletter.pk, "trigger": "tag_added"}
    answer = logged_in.post(reverse("automations:new"), {**new, "trigger_tag": tag})
    assert answer.status_code == 200 and "is not a tag" in answer.content.decode()
    assert list(Step.objects.values_list("kind", "tag")) == [("add_tag", "welcomed")]
    automation.refresh_from_db()
    assert automation.trigger == "joined_list" and Automation.objects.count() == 1


@pytest.mark.parametrize("tag", ["new,customer", "t" * 65])
def test_a_tag_that_cannot_be_one_is_a_422_in_the_api(api, account, newsletter, tag):
    made = api("post", "/automations", {"name": "Mine", "list": str(newsletter.uuid)})
    key = made.json()["uuid"]
    step = api("post", f"/automations/{key}/steps", {"kind": "add_tag", "tag": "welcomed"})
    kept = step.json()["steps"][0]["id"]
    for method, path, body in [
        ("post", f"/automations/{key}/steps", {"kind": "add_tag", "tag": tag}),
        ("post", f"/automations/{key}/steps", {"kind": "condition", "test": "has_tag", "key": tag}),
        ("patch", f"/automations/{key}/steps/{kept}", {"tag": tag}),
        ("patch", f"/automations/{key}", {"trigger": "tag_added", "tag": tag}),
        ("post", "/automations", {"name": "T", "list": str(newsletter.uuid),
                                  "trigger": "tag_added", "tag": tag}),
    ]:  # fmt: skip
        answer = api(method, path, body)
        assert answer.status_code == 422, (path, body, answer.content)
        assert "is not a tag" in answer.json()["detail"]
    assert list(Step.objects.values_list("kind", "tag")) == [("add_tag", "welcomed")]
    assert Automation.objects.get().trigger == "joined_list"
