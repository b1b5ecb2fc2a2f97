"""Rails before sending, as a marketer meets them: a new campaign keeps the editor's
starter body, and its send page shows that as blocking with Send disabled; the "Fix it"
link leads to the body, the marketer writes their own, and the send, larger than the
confirmation threshold, goes only once its number of recipients is typed back.
Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign
from tidings.outbox.models import OutboxMessage
from tidings.sending import services as sending

pytestmark = pytest.mark.browser


def test_the_starter_body_blocks_send_and_a_large_send_is_confirmed_by_its_number(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.EMAIL_DELIVERY = "outbox"
    # The first save starts a render process: on a busy machine, beyond the default 10 s.
    page.set_default_timeout(60_000)
    # Three recipients count as a large send here (TIDINGS_CONFIRM_SEND_OVER).
    settings.SENDING = {**settings.SENDING, "confirm_over": 2}
    site = str(live_server.url)
    account = customer.account
    sending.set_postal_address(account, "12 Baker Lane, 1000 Brussels", by=customer)
    news = MailingList.objects.create(account=account, name="Bakery news")
    for i in range(3):
        audience.add_contact(account, f"reader{i}@example.org", name=f"Reader {i}", lists=[news])

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # A new campaign, the starter body left as it is.
    page.goto(site + "/campaigns/new/")
    page.get_by_label("Campaign name (only you see it)").fill("Rye week")
    page.get_by_label("Subject", exact=True).fill("Rye for {{ contact.first_name }}")
    page.get_by_role("checkbox", name="Bakery news").check()
    page.get_by_role("button", name="Save", exact=True).click()
    campaign = Campaign.objects.get(account=account)

    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    placeholder = page.locator("#check-placeholder")
    expect(placeholder).to_have_attribute("data-state", "blocking")
    expect(placeholder).to_contain_text("Write your news here")
    expect(page.locator("#send-blocked")).to_be_visible()
    send = page.get_by_role("button", name="Send now")
    expect(send).to_be_disabled()
    expect(page.locator("#check-recipients")).to_contain_text("3 contacts may be mailed now.")
    expect(page.locator("#check-unsubscribe")).to_have_attribute("data-state", "passed")
    screenshot(page, "starter-body-blocked")

    # Fix it: the link leads to the body; the marketer writes their own.
    placeholder.get_by_role("link", name="Fix it").click()
    assert page.url.endswith(f"/campaigns/{campaign.uuid}/#id_body")
    page.locator("#id_body").fill(
        "Hello {{ contact.first_name }},\n\nThe rye loaves are back on Saturday, baked "
        "with flour from the mill down the road.\n\nSee you at the bakery!"
    )
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved “Rye week”.")).to_be_visible()

    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    expect(page.locator("#check-placeholder")).to_have_attribute("data-state", "passed")
    expect(page.locator("#send-blocked")).to_have_count(0)
    # The SpamAssassin line is filled in once the job has scored the message.
    expect(page.locator("#check-spam")).not_to_have_attribute(
        "data-state", "pending", timeout=90_000
    )
    confirm = page.get_by_label("This campaign goes to 3 contacts. Type 3 to confirm")
    expect(confirm).to_be_visible()
    screenshot(page, "ready-to-confirm")

    # A wrong number sends nothing and says the right one.
    confirm.fill("30")
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("This campaign goes to 3 contacts: confirm")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and not OutboxMessage.objects.exists()
    screenshot(page, "wrong-number")

    page.get_by_label("This campaign goes to 3 contacts. Type 3 to confirm").fill("3")
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("Sending has started.")).to_be_visible()
    screenshot(page, "sent")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert sorted(m.recipients for m in OutboxMessage.objects.all()) == [
        f"reader{i}@example.org" for i in range(3)
    ]
