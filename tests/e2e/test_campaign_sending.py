"""A customer writes a campaign, previews it, sends a test, sends it to their list from
the campaign page (the local outbox: no SMTP server configured), pauses and resumes it,
watches the progress bar reach 100% and opens the report.

Celery runs eagerly in the tests; here the campaign is left to a "worker" (this test
calling the engine) so the page's live progress can be watched. Screenshots go to
test-artifacts/e2e/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Response, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign
from tidings.celery import app as celery_app
from tidings.outbox.models import OutboxMessage
from tidings.sending import engine
from tidings.sending.models import Delivery

pytestmark = pytest.mark.browser


@pytest.fixture
def tasks_queued() -> Iterator[None]:
    """Tasks go to the broker instead of running at once; nobody takes them."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = eager


def test_write_test_send_pause_resume_follow_and_report(
    live_server, settings, customer, page: Page, screenshot: Screenshot, request
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    # The embedded default: no SMTP server, mail lands in the local outbox.
    settings.EMAIL_DELIVERY = "outbox"
    site = str(live_server.url)
    news = MailingList.objects.create(account=customer.account, name="Bakery news")
    for i in range(4):
        audience.add_contact(
            customer.account, f"reader{i}@example.org", name=f"Reader {i}", lists=[news]
        )
    failed: list[str] = []
    script_errors: list[str] = []

    def check(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.status} {response.url}")

    page.on("response", check)
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Write it (Markdown) and preview it.
    page.goto(site + "/campaigns/new/")
    page.get_by_label("Campaign name (only you see it)").fill("Rye week")
    page.get_by_label("Subject", exact=True).fill("Rye for {{ contact.first_name }}")
    # Their own words: the editor's starter text cannot be sent (sending.checklist).
    page.locator("#id_body").fill("Hello {{ contact.first_name }},\n\nRye loaves on Saturday.")
    page.get_by_role("checkbox", name="Bakery news").check()
    page.get_by_role("button", name="Save and preview").click()
    expect(page.locator("#preview-subject")).to_have_text("Rye for Alex")
    # The preview has its own test form; the send controls are there too.
    controls = page.locator("section.send-controls")
    expect(controls.get_by_role("button", name="Send now")).to_be_visible()
    screenshot(page, "preview")

    # The campaign page: a draft offers a test, send now and schedule.
    page.get_by_role("link", name="Back to editing").click()
    expect(controls.get_by_text("4 contacts would receive it now")).to_be_visible()
    for name in ("Send test", "Send now", "Schedule"):
        expect(controls.get_by_role("button", name=name, exact=True)).to_be_visible()
    for name in ("Pause", "Resume", "Cancel"):
        expect(controls.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(controls.get_by_label("Time zone")).to_have_value("UTC")
    screenshot(page, "campaign-draft")

    # Nothing goes out before the postal address is there (CAN-SPAM): add it.
    controls.get_by_role("link", name="add your postal address").click()
    page.get_by_label("Postal address shown in every campaign").fill("12 Baker Lane\n1000 Brussels")
    page.get_by_role("button", name="Save address").click()
    expect(page.get_by_text("Postal address saved.")).to_be_visible()
    page.goto(f"{site}/campaigns/{Campaign.objects.get().uuid}/")
    expect(controls.get_by_role("link", name="add your postal address")).to_have_count(0)

    controls.get_by_label("Send a test to").fill("me@example.org")
    controls.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test sent to me@example.org.")).to_be_visible()
    test = OutboxMessage.objects.get()
    assert test.recipients == "me@example.org" and test.subject == "[Test] Rye for Alex"

    # Send now, left to a worker: the page shows the bar at 0% with pause and cancel.
    request.getfixturevalue("tasks_queued")
    page.get_by_role("link", name="Back to editing").click()
    controls.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("Sending has started.")).to_be_visible()
    campaign = Campaign.objects.get(account=customer.account)
    assert campaign.status == "sending"
    assert page.url == f"{site}/campaigns/{campaign.uuid}/"
    expect(page.locator("#p-percent")).to_have_text("0")
    expect(page.locator("#p-remaining")).to_have_text("4")

    controls.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused: nothing more goes out until you resume.")).to_be_visible()
    expect(controls.get_by_role("button", name="Send now")).to_have_count(0)
    screenshot(page, "paused")
    controls.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Sending again.")).to_be_visible()

    # The worker sends half, then the rest; the bar follows without a reload.
    ids = list(
        Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
    )
    engine.send_batch(campaign.pk, ids[0], ids[1])
    expect(page.locator("#p-sent")).to_have_text("2")
    expect(page.locator("#p-percent")).to_have_text("50")
    expect(page.locator("#p-bar")).to_have_attribute("value", "2")
    screenshot(page, "half-way")
    engine.send_batch(campaign.pk, ids[2], ids[-1])
    # Done: the page reloads itself, shows 100% and the report.
    report = page.get_by_role("link", name="Open the report")
    expect(report).to_be_visible()
    expect(page.locator("#p-percent")).to_have_text("100")
    expect(page.locator("#status")).to_have_text("sent")
    expect(controls.get_by_role("button", name="Pause")).to_have_count(0)
    screenshot(page, "sent")
    report.click()
    expect(page.get_by_role("heading", name="Rye week", exact=False).first).to_be_visible()
    screenshot(page, "report")

    sent = OutboxMessage.objects.exclude(recipients="me@example.org")
    assert sorted(m.recipients for m in sent) == [f"reader{i}@example.org" for i in range(4)]
    assert {m.subject for m in sent} == {"Rye for Reader"}
    assert all(m.raw.count("12 Baker Lane, 1000 Brussels") >= 1 for m in sent)
    assert failed == [] and script_errors == []
