"""A failed renewal as the customer lives it, in the browser: on day 14 the campaign's
checklist refuses with a link to Billing, which says why and what it costs; paying on
the test gateway's page ends it at once and the campaign goes.
Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.billing import dunning, renewals
from tidings.billing import services as billing
from tidings.billing.models import Offer, Order, Price, Subscription, VatTreatment
from tidings.campaigns.models import Campaign
from tidings.sending import services as sending

pytestmark = pytest.mark.browser


def test_a_customer_suspended_for_an_unpaid_renewal_pays_it_and_sends_again(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.BASE_URL = live_server.url
    settings.BILLING = {**settings.BILLING, "free_credits": 0, "gateway": "test"}
    page.set_default_timeout(60_000)
    site = str(live_server.url)
    account = customer.account
    plan = Offer.objects.create(
        kind=Offer.Kind.PLAN, name="Bakery plan", period=Offer.Period.MONTH,
        contact_limit=100, vat_treatment=VatTreatment.EXEMPT,
    )  # fmt: skip
    Price.objects.create(offer=plan, currency="EUR", amount=Decimal("29.00"))
    bought = billing.place_order(
        account_id=account.pk, offer_id=plan.pk, currency="EUR", by=customer,
        buyer_kind="company", billing_name="Bakery Ltd",
        billing_address="12 Baker Lane\n1000 Brussels", billing_country="BE",
    )  # fmt: skip
    billing.start_checkout(bought, success_url=site, cancel_url=site)
    bought.refresh_from_db()
    billing.pay_on_test_gateway(bought.gateway_ref, "pay")
    sub = Subscription.objects.get(order=bought)
    # The period ended; the saved card is declined; fourteen days pass.
    Subscription.objects.filter(pk=sub.pk).update(
        current_period_end=timezone.now() - timedelta(minutes=1)
    )
    assert renewals.renew_due() == 1
    billing.renew_on_test_gateway(Order.objects.get(renewal_of=sub), "fail")
    assert dunning.advance(timezone.now() + timedelta(days=14)) == 1

    sending.set_postal_address(account, "12 Baker Lane, 1000 Brussels", by=customer)
    news = MailingList.objects.create(account=account, name="Bakery news")
    audience.add_contact(account, "reader@example.org", name="Reader", lists=[news])
    campaign = Campaign.objects.create(
        account=account, name="Rye week", subject="Rye", from_email="news@example.org",
        body="<p>Our rye is back this week.</p>",
    )  # fmt: skip
    campaign.lists.add(news)

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    expect(page.locator("#check-payment")).to_contain_text("Sending is suspended")
    expect(page.locator("#send-blocked")).to_be_visible()
    screenshot(page, "suspended")
    page.locator("#check-payment").get_by_role("link").click()
    expect(page).to_have_url(f"{site}/account/billing/")
    expect(page.locator("#dunning-h")).to_have_text("A payment failed")
    expect(page.get_by_text("Sending is suspended since")).to_be_visible()
    screenshot(page, "billing-suspended")
    page.get_by_role("button", name="Pay 29.00 EUR").click()

    expect(page.get_by_text("no money moves")).to_be_visible()
    screenshot(page, "renewal-page")
    page.get_by_role("button", name="The renewal is paid (test)").click()
    expect(page.get_by_role("status")).to_contain_text("Paid")
    page.goto(site + "/account/billing/")
    expect(page.locator("#dunning-h")).to_have_count(0)

    page.goto(f"{site}/campaigns/{campaign.uuid}/send/")
    expect(page.locator("#check-payment")).to_have_count(0)
    expect(page.locator("#send-blocked")).to_have_count(0)
    page.get_by_role("button", name="Send now").click()
    page.wait_for_load_state("networkidle")
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT
