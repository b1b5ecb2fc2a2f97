"""The automation pages' forms in Chromium: each trigger and each kind of step shows
only its own fields, the choice changing them at once; the automation is made with the
fields shown. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot, log_in
from tidings.audience.models import MailingList
from tidings.automations.models import Automation, SplitTest
from tidings.campaigns.models import Campaign

pytestmark = pytest.mark.browser


def test_each_trigger_and_step_kind_shows_only_its_own_fields(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    MailingList.objects.create(account=customer.account, name="Bakery news")
    log_in(page, site, customer.email)

    page.goto(site + "/automations/new/")
    tag = page.get_by_label("Tag (a tag added)")
    date = page.get_by_label("Date attribute (birthday, renewal…)")
    expect(tag).to_be_hidden()
    expect(date).to_be_hidden()
    page.get_by_label("Contacts enter when").select_option("tag_added")
    expect(tag).to_be_visible()
    expect(date).to_be_hidden()
    page.get_by_label("Contacts enter when").select_option("date")
    expect(tag).to_be_hidden()
    expect(date).to_be_visible()
    page.get_by_label("Contacts enter when").select_option("tag_added")
    page.get_by_label("Name:", exact=True).fill("Regulars")
    tag.fill("regular")
    screenshot(page, "automation-new-tag-trigger")
    page.get_by_role("button", name="Create").click()
    automation = Automation.objects.get(account=customer.account)
    assert automation.trigger == "tag_added" and automation.trigger_tag == "regular"

    expect(page.get_by_text("enter when the tag regular is added")).to_be_visible()
    subject = page.get_by_label("Subject:", exact=True)
    unit = page.get_by_label("Unit")
    expect(subject).to_be_visible()
    expect(unit).to_be_hidden()
    page.get_by_label("Kind").select_option("wait")
    expect(subject).to_be_hidden()
    expect(unit).to_be_visible()
    expect(page.get_by_label("Attribute or tag")).to_be_hidden()
    page.get_by_label("Kind").select_option("condition")
    expect(unit).to_be_hidden()
    # Within a condition, only the fields of the test chosen (walk22: a value and a
    # message of step were asked of "attribute is set").
    key = page.get_by_label("Attribute or tag")
    value = page.get_by_label("Value:", exact=True)
    about = page.get_by_label("Message of step")
    test = page.get_by_label("Condition:", exact=True)
    for chosen, shown in [
        ("", ()), ("is_set", (key,)), ("has_tag", (key,)), ("equals", (key, value)),
        ("contains", (key, value)), ("opened", (about,)), ("clicked", (about,)),
    ]:  # fmt: skip
        test.select_option(chosen)
        for field in (key, value, about):
            expect(field).to_be_visible() if field in shown else expect(field).to_be_hidden()
    page.get_by_label("Kind").select_option("leave")
    expect(page.locator("form .grouped").last.locator("fieldset:visible")).to_have_count(0)
    page.get_by_label("Kind").select_option("wait")
    page.get_by_label("Wait:", exact=True).fill("2")
    unit.select_option("hours")
    page.get_by_role("button", name="Add the step").click()
    expect(page.locator("ol.flow li")).to_have_count(1)
    step = automation.steps.get()
    expect(page.locator(f"#step-{step.pk}")).to_contain_text("2 hours")
    # (After the click: a full-page screenshot just before it can leave the page scrolled
    # under the pointer between mousedown and mouseup, and the click then lands elsewhere.)
    screenshot(page, "automation-wait-added")
    assert (step.kind, step.wait_amount, step.wait_unit) == ("wait", 2, "hours")
    # Adding and removing a tag share one field (sent once, not twice with one empty).
    page.get_by_label("Kind").select_option("add_tag")
    page.get_by_label("Tag:", exact=True).fill("welcomed")
    page.get_by_role("button", name="Add the step").click()
    expect(page.locator("ol.flow li")).to_have_count(2)
    assert automation.steps.get(kind="add_tag").tag == "welcomed"
    # A condition made with the fields shown: the hidden value is not sent.
    page.get_by_label("Kind").select_option("condition")
    page.get_by_label("Condition:", exact=True).select_option("equals")
    page.get_by_label("Value:", exact=True).fill("Paris")
    page.get_by_label("Condition:", exact=True).select_option("is_set")
    page.get_by_label("Attribute or tag").fill("city")
    screenshot(page, "automation-condition-is-set")
    page.get_by_role("button", name="Add the step").click()
    expect(page.locator("ol.flow li")).to_have_count(3)
    condition = automation.steps.get(kind="condition")
    assert (condition.test, condition.key, condition.value) == ("is_set", "city", "")


def test_the_ab_test_form_shows_only_the_chosen_kinds_fields(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    """Walk22: every kind's fields showed at once (subjects, sender names, variants,
    four send times, the sample), whatever was tested."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    news = MailingList.objects.create(account=customer.account, name="Bakery news")
    campaign = Campaign.objects.create(
        account=customer.account, name="Winter bread", subject="Our winter bread",
        from_email="news@news.example.org", body="<p>Hello</p>", track_opens=True,
    )  # fmt: skip
    campaign.lists.add(news)
    log_in(page, site, customer.email)
    page.goto(site + "/ab-tests/")
    subject_b = page.get_by_label("Subject of variant B")
    sender_b = page.get_by_label("Sender name of variant B")
    variants = page.get_by_label("Number of variants")
    time_a = page.get_by_label("Send time of variant A")
    share = page.get_by_label("Test share (%)")
    metric = page.get_by_label("Winner by")
    fields = (subject_b, sender_b, variants, time_a, share)
    for kind, shown in [
        ("subject", (subject_b, share)), ("from_name", (sender_b, share)),
        ("content", (variants, share)), ("send_time", (time_a,)), ("subject", (subject_b, share)),
    ]:  # fmt: skip
        page.locator(f"input[name=kind][value={kind}]").check()
        for field in fields:
            expect(field).to_be_visible() if field in shown else expect(field).to_be_hidden()
        expect(metric).to_be_visible()
    subject_b.fill("Fresh rye, just for you")
    screenshot(page, "ab-test-subject")
    page.get_by_role("button", name="Create the test").click()
    expect(page.get_by_role("heading", name="A/B test of Winter bread")).to_be_visible()
    test = SplitTest.objects.get()
    assert (test.kind, test.test_percent) == ("subject", 20)
    assert list(test.variants.order_by("label").values_list("campaign__subject", flat=True)) == [
        "Our winter bread",
        "Fresh rye, just for you",
    ]
