"""The automations' pages, as a customer uses them: create one on a list, add steps,
start it, watch contacts move through the steps, pause it. Another account's
automation is a 404; bad input is refused with the reason and changes nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.sending.conftest import add_contacts
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.automations import engine, services
from tidings.automations.forms import StepForm
from tidings.automations.models import Automation, Step
from tidings.campaigns.models import Campaign
from tidings.sending.models import Delivery, SendingSettings
from tidings.staff.models import AuditEvent

STEP = {
    "wait_days": "0",
    "subject": "Welcome aboard",
    "from_email": "news@news.example.org",
    "from_name": "Example News",
    "body": "Hello {{ contact.name }}, glad you joined.",
}


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def test_a_customer_builds_starts_watches_and_pauses_a_welcome_series(
    logged_in, account, newsletter, mailbox
):
    answer = logged_in.post(
        reverse("automations:new"), {"name": "Welcome", "mailing_list": newsletter.pk}
    )
    automation = Automation.objects.get()
    page = reverse("automations:detail", args=[automation.uuid])
    assert answer.status_code == 302 and answer["Location"] == page
    assert logged_in.post(page, STEP).status_code == 302
    assert logged_in.post(page, {**STEP, "wait_days": "3", "subject": "Tips"}).status_code == 302
    assert list(Step.objects.values_list("wait_days", flat=True)) == [0, 3]
    action = reverse("automations:action", args=[automation.uuid])
    logged_in.post(action, {"action": "start"})
    automation.refresh_from_db()
    assert automation.status == Automation.Status.ACTIVE
    audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    engine.run(timezone.now())
    assert [m.subject for m in mailbox] == ["Welcome aboard"]
    text = logged_in.get(page).content.decode()
    assert "1 contact entered" in text and "1 waiting for it now" in text and "1 sent" in text
    assert "Welcome" in logged_in.get(reverse("automations:list")).content.decode()
    logged_in.post(action, {"action": "pause"})
    automation.refresh_from_db()
    assert automation.status == Automation.Status.PAUSED


def test_a_condition_shows_how_many_met_it_and_how_many_did_not(
    logged_in, account, newsletter, customer
):
    flow = services.create_automation(account, name="Cities", mailing_list=newsletter, by=None)
    services.add_step(flow, kind=Step.Kind.CONDITION, test="is_set", key="city", by=customer)
    services.add_step(flow, kind=Step.Kind.WAIT, wait_amount=1, wait_unit="days", by=customer)
    services.start(flow, by=customer)
    for i, city in enumerate(["Paris", "", "Lyon"]):
        attributes = {"city": city} if city else {}
        audience.add_contact(
            account, f"r{i}@example.net", attributes=attributes, lists=[newsletter]
        )
    engine.run(timezone.now())
    text = logged_in.get(reverse("automations:detail", args=[flow.uuid])).content.decode()
    assert "0 waiting for it now · 2 met · 1 did not · 3 passed" in text
    assert text.count(" did not") == 1  # the condition's only: not the wait's
    assert "2 waiting for it now · 0 passed" in text


def test_bad_input_is_refused_with_the_reason(logged_in, account, newsletter, other_customer):
    theirs = MailingList.objects.create(account=other_customer.account, name="Theirs")
    answer = logged_in.post(reverse("automations:new"), {"name": "X", "mailing_list": theirs.pk})
    assert answer.status_code == 200 and not Automation.objects.exists()
    logged_in.post(reverse("automations:new"), {"name": "Welcome", "mailing_list": newsletter.pk})
    automation = Automation.objects.get()
    page = reverse("automations:detail", args=[automation.uuid])
    answer = logged_in.post(page, {**STEP, "wait_days": "-2"})
    assert answer.status_code == 200 and not Step.objects.exists()
    answer = logged_in.post(page, {**STEP, "body": "{% if %}"})
    assert answer.status_code == 200 and not Step.objects.exists()
    answer = logged_in.post(
        reverse("automations:action", args=[automation.uuid]), {"action": "start"}, follow=True
    )
    assert "Add a step first." in answer.content.decode()
    automation.refresh_from_db()
    assert automation.status == Automation.Status.DRAFT


def test_another_accounts_automation_is_not_found(client, other_customer, account, newsletter):
    mine = Automation.objects.create(account=account, name="Mine", mailing_list=newsletter)
    client.force_login(other_customer)
    assert client.get(reverse("automations:detail", args=[mine.uuid])).status_code == 404
    answer = client.post(reverse("automations:action", args=[mine.uuid]), {"action": "start"})
    assert answer.status_code == 404
    assert "Mine" not in client.get(reverse("automations:list")).content.decode()


def test_the_page_picks_a_trigger_and_adds_inserts_changes_and_removes_steps(
    logged_in, account, newsletter, mailbox
):
    answer = logged_in.post(
        reverse("automations:new"),
        {
            "name": "VIP",
            "mailing_list": newsletter.pk,
            "trigger": "tag_added",
            "trigger_tag": "vip",
            "reentry": "on",
        },
    )
    automation = Automation.objects.get()
    assert (automation.trigger, automation.trigger_tag, automation.reentry) == (
        "tag_added",
        "vip",
        True,
    )
    page = reverse("automations:detail", args=[automation.uuid])
    assert answer["Location"] == page
    assert logged_in.post(page, {"op": "add", "kind": "send", **STEP}).status_code == 302
    first = Step.objects.get()
    wait = {"op": "add", "kind": "wait", "wait_weekday": "1", "wait_time": "09:00"}
    assert logged_in.post(page, {**wait, "before": first.pk}).status_code == 302
    tag = {"op": "add", "kind": "add_tag", "tag": "welcomed"}
    assert logged_in.post(page, tag).status_code == 302
    kinds = list(Step.objects.order_by("position").values_list("kind", flat=True))
    assert kinds == ["wait", "send", "add_tag"]
    edit = {"op": "edit", "step": first.pk, "wait_days": "2"}
    assert logged_in.post(page, edit).status_code == 302
    first.refresh_from_db()
    assert first.wait_days == 2
    text = logged_in.get(page).content.decode()
    assert "the tag <strong>vip</strong>" in text and "may enter again" in text
    assert "until the next Tuesday at 09:00" in text
    removed = Step.objects.get(kind="add_tag")
    assert logged_in.post(page, {"op": "remove", "step": removed.pk}).status_code == 302
    assert Step.objects.count() == 2
    trigger = {"op": "trigger", "trigger-trigger": "event", "trigger-event_name": "paid"}
    assert logged_in.post(page, trigger).status_code == 302
    automation.refresh_from_db()
    assert (automation.trigger, automation.event_name) == ("event", "paid")
    # Bad input: the reason shown, nothing changed.
    bad = logged_in.post(page, {"op": "add", "kind": "add_tag", "tag": ""})
    assert bad.status_code == 200 and "Name the tag." in bad.content.decode()
    assert logged_in.post(page, {"op": "remove", "step": "999999"}).status_code == 404
    assert Step.objects.count() == 2


def test_a_message_step_without_a_from_address_is_refused_with_the_reason(
    logged_in, customer, newsletter
):
    """Found walking issue 21: an empty From address was a 500 (the campaign's own model
    check escaped the step's service); it is the form's error now, and the field starts
    with the user's address, as in the campaign editor."""
    logged_in.post(reverse("automations:new"), {"name": "Welcome", "mailing_list": newsletter.pk})
    page = reverse("automations:detail", args=[Automation.objects.get().uuid])
    assert f'value="{customer.email}"' in logged_in.get(page).content.decode()
    answer = logged_in.post(page, {**STEP, "from_email": ""})
    assert answer.status_code == 200 and not Step.objects.exists()
    assert "From address: This field cannot be blank." in answer.content.decode()


def test_a_wait_reads_in_the_singular_and_the_plural(logged_in, newsletter):
    logged_in.post(reverse("automations:new"), {"name": "Welcome", "mailing_list": newsletter.pk})
    page = reverse("automations:detail", args=[Automation.objects.get().uuid])
    for amount, unit in (("1", "days"), ("3", "hours"), ("1", "minutes")):
        wait = {"op": "add", "kind": "wait", "wait_amount": amount, "wait_unit": unit}
        assert logged_in.post(page, wait).status_code == 302
    text = logged_in.get(page).content.decode()
    assert "1 day" in text and "3 hours" in text and "1 minute" in text
    assert "1 days" not in text and "1 minutes" not in text


def test_only_a_paused_automation_is_resumed_on_the_page_as_in_the_api(
    logged_in, welcome, customer
):
    action = reverse("automations:action", args=[welcome.uuid])
    answer = logged_in.post(action, {"action": "resume"}, follow=True)
    assert "Only a paused automation can be resumed." in answer.content.decode()
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.DRAFT  # a draft is not started by "resume"
    logged_in.post(action, {"action": "start"})
    logged_in.post(action, {"action": "pause"})
    logged_in.post(action, {"action": "resume"})
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.ACTIVE


def test_the_whole_step_form_as_a_browser_posts_it_adds_the_chosen_kind(
    logged_in, account, newsletter
):
    """A browser without the page's script sends every kind's fields (those of the
    other kinds empty or at their initial value): only the chosen kind's are read."""
    automation = services.create_automation(
        account, name="Series", mailing_list=newsletter, by=None
    )
    page = reverse("automations:detail", args=[automation.uuid])
    form = {
        "op": "add", "kind": "wait", "before": "", "wait_days": "1", "subject": "",
        "from_name": "", "from_email": "owner@example.com", "body": "", "wait_amount": "2",
        "wait_unit": "hours", "wait_weekday": "", "wait_time": "", "test": "", "key": "",
        "value": "", "about": "", "otherwise": "", "tag": "", "target_list": "",
    }  # fmt: skip
    answer = logged_in.post(page, form)
    assert answer.status_code == 302, answer.content.decode()
    step = Step.objects.get(automation=automation)
    assert (step.kind, step.wait_amount, step.wait_unit) == ("wait", 2, "hours")


def test_removing_a_step_contacts_wait_at_is_asked_again(
    logged_in, account, newsletter, welcome, customer, mailbox
):
    """A step with contacts waiting at it is removed only once confirmed: the page says
    how many move on at once. A step nobody waits at goes at the first click."""
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())  # the first message sent; Ada waits two days for the second
    first, second = welcome.steps.order_by("position")
    page = reverse("automations:detail", args=[welcome.uuid])
    asked = logged_in.post(page, {"op": "remove", "step": second.pk})
    text = asked.content.decode()
    assert asked.status_code == 200 and "Remove step 2?" in text
    assert "1 contact waits at it: they move on to the step after it at once." in text
    assert welcome.steps.count() == 2
    wrong = {"op": "remove", "step": second.pk, "confirm": first.pk}
    assert logged_in.post(page, wrong).status_code == 200 and welcome.steps.count() == 2
    confirmed = {"op": "remove", "step": second.pk, "confirm": second.pk}
    assert logged_in.post(page, confirmed).status_code == 302
    assert list(welcome.steps.all()) == [first]
    # The second step's message went to nobody: it went with its step. The first one's
    # went to Ada: it is stopped, and the page says where it is.
    assert not Campaign.objects.filter(pk=second.campaign_id).exists()
    removed = logged_in.post(page, {"op": "remove", "step": first.pk}, follow=True)
    assert "Step removed. Its message is stopped; its report stays in Campaigns." in (
        removed.content.decode()
    )
    assert not welcome.steps.exists()
    assert Campaign.objects.get(pk=first.campaign_id).status == Campaign.Status.CANCELLED


def test_without_a_list_the_page_links_to_a_new_one_and_refuses_with_the_reason(
    logged_in, account, other_customer
):
    """A new customer's List select was empty, with nothing said; sent so, the form
    answered "This field is required." Another account's list counts for nothing."""
    MailingList.objects.create(account=other_customer.account, name="Theirs")
    url = reverse("automations:new")
    page = logged_in.get(url).content.decode()
    assert "You have no list yet" in page and reverse("audience:list_new") in page
    assert 'name="mailing_list"' not in page and "Theirs" not in page
    answer = logged_in.post(url, {"name": "Welcome", "trigger": "joined_list"})
    text = answer.content.decode()
    assert answer.status_code == 200 and not Automation.objects.exists()
    assert escape("Create a list first: an automation's messages go to its subscribers.") in text
    assert "This field is required." not in text and reverse("audience:list_new") in text


def test_a_condition_on_an_open_nobody_can_meet_says_why(logged_in, account, newsletter, customer):
    """Found walking the product: a condition "opened the message of step 1" on a
    message that tracks no opens (a step's campaign asks for none by default) sent every
    contact to "did not", and nothing on the page said why. It says so now, and what
    would count: the message's tracking, then the account's per-contact tracking (P26)."""
    flow = services.create_automation(account, name="Opens", mailing_list=newsletter, by=None)
    welcome = services.add_step(
        flow, wait_days=0, subject="Welcome", from_email="news@news.example.org", by=customer
    )
    services.add_step(flow, kind=Step.Kind.CONDITION, test="opened", about=welcome, by=customer)
    services.add_step(flow, kind=Step.Kind.CONDITION, test="clicked", about=welcome, by=customer)
    page = reverse("automations:detail", args=[flow.uuid])
    text = logged_in.get(page).content.decode()
    assert "Nobody can meet this condition: the message of step 1 does not track opens." in text
    assert "Nobody can meet this condition: the message of step 1 does not track clicks." in text
    Campaign.objects.filter(pk=welcome.campaign_id).update(track_opens=True, track_clicks=True)
    text = logged_in.get(page).content.decode()
    assert text.count(escape("your account tracks opens and clicks in aggregate only")) == 2
    SendingSettings.objects.update_or_create(
        account=account, defaults={"tracking": SendingSettings.Tracking.PER_CONTACT}
    )
    assert "Nobody can meet this condition" not in logged_in.get(page).content.decode()


def test_a_condition_nobody_could_meet_is_refused_at_the_start_while_it_can_be_mended(
    logged_in, account, newsletter, customer
):
    """Walkpg: the walk started a series whose condition asks for an open of step 1's
    message, which counted none (the page's warning was there, the Start button too).
    Once started, the message is sending and can no longer change: every contact went
    to "did not" for good. The start is refused with the reason while the message is a
    draft; once it counts opens, the series starts."""
    flow = services.create_automation(account, name="Opens", mailing_list=newsletter, by=None)
    welcome = services.add_step(
        flow, wait_days=0, subject="Welcome", from_email="news@news.example.org",
        body="<p>Hello {{ contact.name }}</p>", by=customer,
    )  # fmt: skip
    services.add_step(flow, kind=Step.Kind.CONDITION, test="opened", about=welcome, by=customer)
    response = logged_in.post(
        reverse("automations:action", args=[flow.uuid]), {"action": "start"}, follow=True
    )
    assert (
        escape(
            "Step 2: Nobody can meet this condition: the message of step 1 does not track opens. "
            "Switch it on in the message before starting."
        )
        in response.content.decode()
    )
    flow.refresh_from_db()
    assert flow.status == Automation.Status.DRAFT
    assert Campaign.objects.get(pk=welcome.campaign_id).status == Campaign.Status.DRAFT
    Campaign.objects.filter(pk=welcome.campaign_id).update(track_opens=True)
    services.start(flow, by=customer)
    assert Automation.objects.get(pk=flow.pk).status == Automation.Status.ACTIVE


def test_a_step_message_offers_no_send_now_and_is_never_sent_to_the_whole_list(
    logged_in, account, newsletter, welcome, customer, mailbox
):
    """Walkpg: the step's message, opened from the automation's page to edit it, offered
    Send now ("3 contacts would receive it now"): pressed, the welcome went to every
    subscriber of the list at once, and the automation could no longer start."""
    add_contacts(account, newsletter, 3)
    step = welcome.steps.first()
    message = step.campaign
    page = logged_in.get(reverse("campaigns:edit", args=[message.uuid])).content.decode()
    assert 'value="send"' not in page and 'value="schedule"' not in page
    assert 'id="step-message"' in page and "would receive it now" not in page
    for action in ("send", "schedule"):
        data = {"action": action, "when": "2030-01-01T09:00", "timezone": "UTC"}
        response = logged_in.post(reverse("sending:send", args=[message.uuid]), data, follow=True)
        assert "the automation sends it to each contact" in response.content.decode()
    message.refresh_from_db()
    assert message.status == Campaign.Status.DRAFT
    assert not Delivery.objects.exists() and mailbox == []
    services.start(welcome, by=customer)
    assert Automation.objects.get(pk=welcome.pk).status == Automation.Status.ACTIVE


def test_a_running_step_message_shows_what_it_sent_not_a_percentage(
    logged_in, account, newsletter, welcome, customer, mailbox
):
    """Walkpg, left alone then: the running step message's page said "0 % done, 0 per
    minute" (it has no end: its recipients are who reaches the step), polled its progress
    every 1.5 s forever, and the campaigns list showed "—" for what it had sent."""
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    assert len(mailbox) == 1
    message = welcome.steps.order_by("position").first().campaign
    page = logged_in.get(reverse("campaigns:edit", args=[message.uuid])).content.decode()
    assert "Sent by the automation “Welcome” to each contact who reaches its step 1" in page
    assert reverse("automations:detail", args=[welcome.uuid]) in page
    assert re.search(r'<dd id="p-sent">1</dd>', page)
    assert "% done" not in page and "per minute" not in page
    assert "progress.js" not in page and "progress-box" not in page
    assert reverse("sending:report", args=[message.uuid]) in page
    listing = logged_in.get(reverse("campaigns:list")).content.decode()
    row = next(r for r in listing.split("<tr>") if message.name in r)
    assert re.search(r'<td class="num">1</td>', row)
    assert reverse("sending:report", args=[message.uuid]) in row


def test_the_first_message_of_a_series_goes_at_once_unless_asked(account, newsletter, customer):
    """The add-step form offered "Wait (days): 1" for a series' first message, its
    welcome: it now offers 0 there, and 1 after."""
    flow = services.create_automation(account, name="Flow", mailing_list=newsletter, by=customer)
    assert StepForm(automation=flow)["wait_days"].value() == 0
    services.add_step(
        flow, wait_days=0, subject="Welcome", from_email="news@news.example.org", by=customer
    )
    assert StepForm(automation=flow)["wait_days"].value() == 1


def test_an_automation_that_never_ran_is_deleted_with_its_steps_and_drafts(
    logged_in, account, newsletter, welcome, customer
):
    """Left alone before: a wrongly built series could only be paused, and stayed in the
    list for good."""
    drafts = list(welcome.steps.values_list("campaign_id", flat=True))
    detail = logged_in.get(reverse("automations:detail", args=[welcome.uuid])).content.decode()
    delete = reverse("automations:delete", args=[welcome.uuid])
    assert delete in detail
    confirm = logged_in.get(delete).content.decode()
    assert "It has never run. It is deleted with its 2 steps and their messages (drafts)." in (
        confirm
    )
    response = logged_in.post(delete)
    assert response.status_code == 302 and response["Location"] == reverse("automations:list")
    assert not Automation.objects.filter(pk=welcome.pk).exists()
    assert not Step.objects.exists() and not Campaign.objects.filter(pk__in=drafts).exists()
    (event,) = AuditEvent.objects.filter(target_type="automations.Automation", action="delete")
    assert (event.target_id, event.account_id) == (str(welcome.pk), account.pk)
    listing = logged_in.get(reverse("automations:list")).content.decode()
    assert "Deleted “Welcome”." in listing
    assert reverse("automations:detail", args=[welcome.uuid]) not in listing


def test_the_deletion_page_counts_the_steps_in_words(logged_in, account, newsletter, customer):
    flow = services.create_automation(account, name="Flow", mailing_list=newsletter, by=customer)
    page = reverse("automations:delete", args=[flow.uuid])
    assert "It has never run and has no step." in logged_in.get(page).content.decode()
    services.add_step(flow, kind="leave", by=customer)
    one = logged_in.get(page).content.decode()
    assert "It is deleted with its step, and that step's message if it has one" in one


def test_an_automation_that_ran_is_not_deleted_its_reports_stay(
    logged_in, account, newsletter, welcome, customer, mailbox
):
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    services.pause(welcome, by=customer)
    delete = reverse("automations:delete", args=[welcome.uuid])
    detail = logged_in.get(reverse("automations:detail", args=[welcome.uuid])).content.decode()
    assert delete not in detail
    response = logged_in.post(delete, follow=True)
    assert "This automation has run: its messages went out and their reports stay." in (
        response.content.decode()
    )
    assert Automation.objects.filter(pk=welcome.pk).exists()
    assert Step.objects.filter(automation=welcome).count() == 2
    assert Delivery.objects.filter(contact__email="ada@example.net").count() == 1


def test_another_customers_automation_cannot_be_deleted(
    logged_in, other_customer, newsletter, welcome
):
    theirs = services.create_automation(
        other_customer.account,
        name="Theirs",
        mailing_list=MailingList.objects.create(account=other_customer.account, name="Theirs"),
        by=other_customer,
    )
    delete = reverse("automations:delete", args=[theirs.uuid])
    assert logged_in.get(delete).status_code == 404
    assert logged_in.post(delete).status_code == 404
    assert Automation.objects.filter(pk=theirs.pk).exists()
