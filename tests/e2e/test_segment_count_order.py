"""The segment builder's live size in Chromium, when the answers come back out of order
(a loaded server): only the count of the rule last asked is shown. A slow answer to an
older rule (here, a list that does not exist) arriving after the newer one's must not
overwrite it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import log_in
from tidings.audience import services as audience
from tidings.audience.models import MailingList

pytestmark = pytest.mark.browser


def test_a_late_answer_to_an_older_rule_does_not_overwrite_the_count(
    live_server, settings, customer, page: Page
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    letter = MailingList.objects.create(account=customer.account, name="Monthly letter")
    audience.add_contact(customer.account, "reader@example.org", lists=[letter])
    log_in(page, site, customer.email)

    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if not held:
            held.append(route)  # answered later, below
        else:
            route.continue_()

    page.route("**/segments/count/", hold_the_first)
    page.goto(site + "/segments/new/")
    page.get_by_label("Field of condition 1").select_option("list")
    page.get_by_label("Value of condition 1").fill("No such list")
    for _ in range(100):  # the first count is asked 400 ms after the last change
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the first count was never asked"
    page.get_by_label("Value of condition 1").fill("Monthly letter")
    expect(page.locator("#segment-count")).to_have_text("1")
    # Now the older rule's answer ("not one of your lists") comes back, last.
    with page.expect_response("**/segments/count/"):
        held[0].continue_()
    page.wait_for_timeout(500)
    expect(page.locator("#segment-count")).to_have_text("1")
    expect(page.locator("#count-error")).to_have_text("")
