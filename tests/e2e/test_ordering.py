"""Ordering as a new customer does it, in the browser: a campaign beyond the free credits
is refused with a link to order; the pricing page, the billing identity, the test
gateway's hosted page (no money moves), back in Tidings; the order is paid only by the
gateway's signed webhook, the credits arrive and the campaign goes.
Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.billing.models import Offer, Order, Price, VatTreatment
from tidings.campaigns.models import Campaign
from tidings.sending import services as sending

pytestmark = pytest.mark.browser


@pytest.mark.promise("P4", "P10")
def test_a_customer_short_of_credits_orders_a_pack_pays_on_the_hosted_page_and_sends(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.BASE_URL = live_server.url
    settings.BILLING = {**settings.BILLING, "free_credits": 2, "gateway": "test"}
    page.set_default_timeout(60_000)
    site = str(live_server.url)
    account = customer.account
    pack = Offer.objects.create(
        kind=Offer.Kind.PACK, name="1,000 credits", credits=1000,
        vat_treatment=VatTreatment.STANDARD, vat_rate=Decimal("21"),
    )  # fmt: skip
    Price.objects.create(offer=pack, currency="EUR", amount=Decimal("9.90"))
    sending.set_postal_address(account, "12 Baker Lane, 1000 Brussels", by=customer)
    news = MailingList.objects.create(account=account, name="Bakery news")
    for i in range(3):
        audience.add_contact(account, f"reader{i}@example.org", name=f"Reader {i}", lists=[news])
    campaign = Campaign.objects.create(
        account=account, name="Rye week", subject="Rye", from_email="news@example.org",
        body="<p>Our rye is back this week.</p>",
    )  # fmt: skip
    campaign.lists.add(news)

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Three recipients, two credits: refused before it starts, with a link to order.
    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    expect(page.locator("#check-credits")).to_contain_text("needs 3 credits")
    expect(page.locator("#send-blocked")).to_be_visible()
    screenshot(page, "refused")
    page.locator("#check-credits").get_by_role("link").click()
    expect(page).to_have_url(f"{site}/pricing/")
    screenshot(page, "pricing")
    page.get_by_role("link", name="Order 1,000 credits").click()

    page.get_by_label("A company or organisation").check()
    page.get_by_label("Name on the invoice").fill("Bakery Ltd")
    page.get_by_label("Billing address").fill("12 Baker Lane\n1000 Brussels")
    page.get_by_role("combobox", name="Country").select_option("BE")
    screenshot(page, "billing-identity")
    page.get_by_role("button", name="Continue to payment").click()

    expect(page.get_by_text("no money moves")).to_be_visible()
    expect(page.locator("input")).not_to_have_count(0)  # the CSRF token, no card field
    assert page.locator("input[name*=card], input[autocomplete^=cc-]").count() == 0
    screenshot(page, "hosted-page")
    page.get_by_role("button", name="Pay (test)").click()

    expect(page.get_by_role("status")).to_contain_text("Paid")
    order = Order.objects.get(account=account)
    assert order.status == Order.Status.PAID
    page.goto(site + "/account/billing/")
    expect(page.locator("#credits-h + p")).to_contain_text("1002")
    screenshot(page, "billing")

    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    expect(page.locator("#send-blocked")).to_have_count(0)
    page.get_by_role("button", name="Send now").click()
    page.goto(site + "/account/billing/")
    expect(page.locator("#credits-h + p")).to_contain_text("999")
