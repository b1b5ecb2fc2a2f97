"""The events outgoing webhooks tell besides subscriptions: a profile changed (through the
API, the contact's own preference page, an import that updates), opens and clicks under
per-contact tracking only (P26), and the order of one contact's messages when the first
is being retried."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tests.automations.webhook_receiver import Receiver, verify
from tests.transfer.conftest import prepare, run
from tidings.accounts import apikeys
from tidings.audience import links, rights, setup
from tidings.audience import services as audience
from tidings.audience.models import ContactChange
from tidings.automations import services as automations
from tidings.automations import webhooks
from tidings.automations.models import WebhookEndpoint, WebhookMessage
from tidings.campaigns.models import Campaign
from tidings.core import retention
from tidings.sending import services as sending
from tidings.sending import tokens, tracking
from tidings.sending.models import Delivery, TrackingEvent

W = WebhookMessage.Status


def hook(account, customer, receiver: Receiver, *events: str) -> WebhookEndpoint:  # type: ignore[no-untyped-def]
    return webhooks.create_endpoint(account, url=receiver.url, events=list(events), by=customer)


def pass_(seconds: float = 1) -> None:
    """One beat of the webhooks' task, `seconds` from now."""
    now = timezone.now() + timedelta(seconds=seconds)
    webhooks.scan(now)
    webhooks.deliver_due(now)


def told(receiver: Receiver) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(b["type"], b["data"]) for b in receiver.bodies()]


# --- contact.updated ----------------------------------------------------------------------


def test_a_profile_changed_through_the_api_is_told_by_field_names_only(
    client, account, customer, newsletter, receiver
):
    endpoint = hook(account, customer, receiver, "contact.updated")
    ada = audience.add_contact(account, "ada@example.net", name="Ada", attributes={"plan": "a"})
    _, key = apikeys.create_api_key(account, name="crm", by=customer)
    answer = client.patch(
        f"/api/v1/contacts/{ada.uuid}",
        data=json.dumps({"name": "Ada Lovelace", "attributes": {"city": "London"}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.content
    pass_()
    ((kind, data),) = told(receiver)
    assert kind == "contact.updated"
    assert data == {
        "contact": {"id": str(ada.uuid), "email": "ada@example.net"},
        "fields": ["name", "attributes.city"],
    }
    _, headers, body = receiver.requests[0]
    assert verify(endpoint.secret, headers, body)
    assert b"London" not in body and b"Lovelace" not in body  # names of fields, no values


def test_saving_a_profile_unchanged_tells_nothing(account, customer, receiver):
    hook(account, customer, receiver, "contact.updated")
    ada = audience.add_contact(account, "ada@example.net", name="Ada")
    audience.update_contact(ada, name="Ada", tags=["vip"])  # tags are not the profile
    pass_()
    assert receiver.requests == []


def test_the_contacts_own_change_on_the_preference_page_is_told(
    client, account, customer, receiver
):
    hook(account, customer, receiver, "contact.updated")
    setup.set_editable_attributes(account, ["city"])
    ada = audience.add_contact(account, "ada@example.net", name="Ada", attributes={"city": "Bath"})
    page = urlsplit(links.preference_url(ada)).path
    answer = client.post(
        page,
        {"action": "save", "name": "Ada", "city": "London", "allow_tracking": "on"},
    )
    assert answer.status_code == 200
    pass_()
    ((kind, data),) = told(receiver)
    assert (kind, data["fields"]) == ("contact.updated", ["attributes.city"])


def test_an_import_that_updates_tells_what_it_changed(account, customer, receiver):
    hook(account, customer, receiver, "contact.updated")
    audience.add_contact(account, "ada@example.org", name="Ada", attributes={"city": "Bath"})
    audience.add_contact(account, "bob@example.org", name="Bob", attributes={"city": "Gent"})
    content = b"email,name,city\nada@example.org,Ada Lovelace,Bath\nbob@example.org,Bob,Gent\n"
    content += b"new@example.org,New,Paris\n"
    job = run(prepare(customer, content, mode="update"))
    assert (job.counts["updated"], job.counts["added"]) == (2, 1)
    pass_()
    # Ada's name changed; Bob's line changed nothing; a new contact is no update.
    assert told(receiver) == [
        (
            "contact.updated",
            {
                "contact": {
                    "id": told(receiver)[0][1]["contact"]["id"],
                    "email": "ada@example.org",
                },
                "fields": ["name"],
            },
        )
    ]


# --- contact.opened and contact.clicked (P26) --------------------------------------------


@pytest.fixture
def tracked(account, newsletter):  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        account=account,
        name="November news",
        subject="News",
        from_email="news@news.example.org",
        body='<p>Read <a href="https://example.org/a">this</a>.</p>',
        track_opens=True,
        track_clicks=True,
    )
    campaign.lists.add(newsletter)
    return campaign


def sent_to(campaign: Campaign, contact) -> Delivery:  # type: ignore[no-untyped-def]
    """What the engine leaves once the message went (its path: tests/sending)."""
    return Delivery.objects.create(
        campaign=campaign, contact=contact, status=Delivery.Status.SENT, sent_at=timezone.now()
    )


def open_and_click(client, campaign: Campaign, delivery_id: int | None) -> None:  # type: ignore[no-untyped-def]
    """A mail client loads the pixel twice and follows the link, by the message's links."""
    pixel = urlsplit(tracking.link("open", tokens.open_token(campaign.pk, delivery_id))).path
    click = tokens.click_token(campaign.pk, delivery_id, "https://example.org/a")
    assert client.get(pixel).status_code == 200
    assert client.get(pixel).status_code == 200
    assert client.get(urlsplit(tracking.link("click", click)).path).status_code == 302


@pytest.mark.promise("P26")
def test_opens_and_clicks_are_told_under_per_contact_tracking(
    client, account, customer, newsletter, tracked, receiver
):
    hook(account, customer, receiver, "contact.opened", "contact.clicked")
    sending.set_tracking(account, "contact")
    ada = audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    open_and_click(client, tracked, sent_to(tracked, ada).pk)
    pass_()
    campaign = {"id": str(tracked.uuid), "name": "November news"}
    contact = {"id": str(ada.uuid), "email": "ada@example.net"}
    # The first open of the message only; each click, with its link.
    assert told(receiver) == [
        ("contact.opened", {"contact": contact, "campaign": campaign}),
        (
            "contact.clicked",
            {"contact": contact, "campaign": campaign, "url": "https://example.org/a"},
        ),
    ]


@pytest.mark.promise("P26")
def test_under_aggregate_only_tracking_no_open_nor_click_is_told(
    client, account, customer, newsletter, tracked, receiver
):
    hook(account, customer, receiver, "contact.opened", "contact.clicked")
    sending.set_tracking(account, "aggregate")
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    open_and_click(client, tracked, None)  # aggregate links name the campaign only
    pass_()
    assert tracking.report(tracked)["summary"]["opens"] == 2  # counted, without anyone
    assert receiver.requests == [] and not WebhookMessage.objects.exists()


@pytest.mark.promise("P26")
def test_events_kept_per_contact_are_not_told_once_the_account_goes_aggregate(
    client, account, customer, newsletter, tracked, receiver
):
    hook(account, customer, receiver, "contact.opened", "contact.clicked")
    sending.set_tracking(account, "contact")
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    open_and_click(client, tracked, sent_to(tracked, ada).pk)
    sending.set_tracking(account, "aggregate")
    pass_()
    assert TrackingEvent.objects.exists() and receiver.requests == []


@pytest.mark.promise("P26")
@pytest.mark.promise("P21")
def test_a_contact_who_objected_to_tracking_is_never_told_of(
    client, account, customer, newsletter, tracked, receiver
):
    hook(account, customer, receiver, "contact.opened", "contact.clicked", "contact.unsubscribed")
    sending.set_tracking(account, "contact")
    ada = audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    bob = audience.add_contact(account, "bob@example.net", name="Bob", lists=[newsletter])
    ada_mail, bob_mail = sent_to(tracked, ada), sent_to(tracked, bob)
    # Bob objected before he opened: nothing is recorded, so nothing can be told.
    audience.set_preferences(
        bob, name="Bob", attributes={}, allow_tracking=False, allow_profiling=True
    )
    open_and_click(client, tracked, bob_mail.pk)
    # Ada opened, her messages were written, then she objected before they went.
    open_and_click(client, tracked, ada_mail.pk)
    now = timezone.now() + timedelta(seconds=1)
    assert webhooks.scan(now) == 2
    audience.set_preferences(
        ada, name="Ada", attributes={}, allow_tracking=False, allow_profiling=True
    )
    audience.unsubscribe(ada)
    pass_(2)
    assert [kind for kind, _ in told(receiver)] == ["contact.unsubscribed"]
    assert not WebhookMessage.objects.filter(event__in=["contact.opened", "contact.clicked"])


# --- campaign.sent ------------------------------------------------------------------------


def test_a_campaign_sent_is_told_once_in_an_account_with_automations(
    account, customer, newsletter, receiver
):
    """Walk22: an account with any step but a message (a wait, a condition: no campaign)
    was never told of a campaign sent. The steps' campaigns were left out by `NOT IN`
    a subquery holding NULL, which leaves out every row."""
    welcome = automations.create_automation(
        account, name="Welcome", mailing_list=newsletter, by=customer
    )
    automations.add_step(welcome, kind="wait", wait_amount=1, wait_unit="days", by=customer)
    step = automations.add_step(
        welcome, subject="Hello", from_email="news@news.example.org", body="Hi.", by=customer
    )
    hook(account, customer, receiver, "campaign.sent")
    now = timezone.now()
    november = Campaign.objects.create(
        account=account, name="November", subject="News", from_email="news@news.example.org",
        status=Campaign.Status.SENT, finished_at=now,
    )  # fmt: skip
    assert step.campaign is not None
    Campaign.objects.filter(pk=step.campaign.pk).update(
        status=Campaign.Status.SENT, finished_at=now
    )  # a step's message is never "a campaign sent", whatever its status
    pass_()
    pass_(2)
    assert told(receiver) == [
        ("campaign.sent", {"campaign": {"id": str(november.uuid), "name": "November"}})
    ]


# --- ordering per contact -----------------------------------------------------------------


def test_a_contacts_later_event_waits_for_an_earlier_one_being_retried(
    client, account, customer, newsletter, receiver
):
    endpoint = hook(account, customer, receiver, "contact.subscribed", "contact.unsubscribed")
    receiver.codes = [500]  # the first message fails once, then everything is accepted
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now() + timedelta(seconds=1)
    webhooks.scan(now)
    audience.unsubscribe(ada)
    audience.add_contact(account, "bob@example.net", lists=[newsletter])
    later = now + timedelta(seconds=1)
    webhooks.scan(later)
    webhooks.deliver_due(later)
    # Ada's subscription failed and waits for its retry; her unsubscription waits for
    # it; Bob's own message is not held by hers.
    assert [(b["type"], b["data"]["contact"]["email"]) for b in receiver.bodies()] == [
        ("contact.subscribed", "ada@example.net"),
        ("contact.subscribed", "bob@example.net"),
    ]
    waiting = {
        m.event: m.waiting for m in webhooks.delivery_log(endpoint) if m.contact_id == ada.pk
    }
    assert waiting == {"contact.subscribed": False, "contact.unsubscribed": True}
    client.force_login(customer)
    page = client.get(f"/webhooks/{endpoint.uuid}/").content.decode()
    assert page.count("waiting for an earlier message") == 1
    retry = later + timedelta(seconds=webhooks.BACKOFF[0])
    webhooks.deliver_due(retry)
    assert [(b["type"], b["data"]["contact"]["email"]) for b in receiver.bodies()][2:] == [
        ("contact.subscribed", "ada@example.net"),
        ("contact.unsubscribed", "ada@example.net"),
    ]
    assert set(WebhookMessage.objects.values_list("status", flat=True)) == {W.DELIVERED}


def test_a_message_failed_for_good_no_longer_holds_the_next(
    account, customer, newsletter, receiver
):
    hook(account, customer, receiver, "contact.subscribed", "contact.unsubscribed")
    receiver.codes = [500] * (len(webhooks.BACKOFF) + 1)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    moment = timezone.now() + timedelta(seconds=1)
    webhooks.scan(moment)
    audience.unsubscribe(ada)
    moment += timedelta(seconds=1)
    webhooks.scan(moment)
    webhooks.deliver_due(moment)
    for wait in webhooks.BACKOFF:
        moment += timedelta(seconds=wait)
        webhooks.deliver_due(moment)
    types = [b["type"] for b in receiver.bodies()]
    assert types == ["contact.subscribed"] * (len(webhooks.BACKOFF) + 1) + ["contact.unsubscribed"]
    statuses = dict(WebhookMessage.objects.values_list("event", "status"))
    assert statuses == {"contact.subscribed": W.FAILED, "contact.unsubscribed": W.DELIVERED}


# --- the data map (P20) -------------------------------------------------------------------


@pytest.mark.promise("P20")
def test_the_contact_sees_their_changes_and_events_and_erasure_removes_them(
    client, account, customer, newsletter, tracked, receiver
):
    hook(account, customer, receiver, "contact.updated", "contact.opened")
    sending.set_tracking(account, "contact")
    ada = audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    audience.update_contact(ada, attributes={"city": "London"})
    open_and_click(client, tracked, sent_to(tracked, ada).pk)
    webhooks.scan(timezone.now() + timedelta(seconds=1))
    sections = {str(s.title): s for s in rights.contact_data(ada)}
    changes = sections["Changes to your profile (the fields' names, not their values)"]
    assert [row[0] for row in changes.rows] == ["attributes.city"]
    told_about = sections["Events about you sent to the customer's systems"]
    assert sorted(row[0] for row in told_about.rows) == ["contact.opened", "contact.updated"]
    audience.erase_contact(ada)
    assert not ContactChange.objects.exists() and not WebhookMessage.objects.exists()


@pytest.mark.promise("P12")
def test_profile_changes_are_kept_thirty_days_then_deleted(account):
    ada = audience.add_contact(account, "ada@example.net", name="Ada")
    audience.update_contact(ada, name="Ada Lovelace")
    assert retention.run("contacts' profile changes", now=timezone.now() + timedelta(days=29)) == 0
    assert retention.run("contacts' profile changes", now=timezone.now() + timedelta(days=31)) == 1
    assert not ContactChange.objects.exists()
