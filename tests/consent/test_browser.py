"""Cookie consent as a new visitor meets it in Chromium (P22, P27, P28, P29)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, Route, expect

from tests.consent.conftest import AXE
from tests.e2e.conftest import Screenshot
from tidings.consent.models import ConsentRecord, ThirdParty

pytestmark = pytest.mark.browser

TRACKER = "analytics.example.test"
TAG = f"https://{TRACKER}/t.js"
CONSENT = "tidings_consent"


@pytest.fixture
def tracker(transactional_db) -> ThirdParty:  # type: ignore[no-untyped-def]
    """An analytics service in effect (its notice period long over)."""
    added = timezone.now() - timedelta(days=60)
    return ThirdParty.objects.create(
        name="Example Analytics",
        category="analytics",
        purpose="counting visits",
        data_received="pages viewed, IP address",
        policy_url=f"https://{TRACKER}/privacy",
        opt_out_url=f"https://{TRACKER}/opt-out",
        script_src=TAG,
        added_at=added,
        effective_at=added + timedelta(days=30),
        announced_at=added,
    )


class Visit:
    """A fresh browser profile, recording every request that leaves for another host."""

    def __init__(self, page: Page, site: str) -> None:
        self.page = page
        self.site = site
        self.foreign: list[str] = []
        own = urlsplit(site).netloc
        page.context.route(f"https://{TRACKER}/**", self._fulfil)
        page.on(
            "request",
            lambda r: (
                urlsplit(r.url).netloc not in (own, "")
                and not r.url.startswith("data:")
                and self.foreign.append(r.url)
            ),
        )

    def _fulfil(self, route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body="window.tracked = true;")

    def cookies(self) -> set[str]:
        return {c["name"] for c in self.page.context.cookies()}

    def banner(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_role("region", name="Cookie choices")


def visit(browser: Browser, site: str, headers: dict[str, str] | None = None) -> Iterator[Visit]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, extra_http_headers=headers or {}
    )
    context.set_default_timeout(10_000)
    try:
        yield Visit(context.new_page(), site)
    finally:
        context.close()


@pytest.fixture
def fresh(browser: Browser, site: str) -> Iterator[Visit]:
    yield from visit(browser, site)


@pytest.mark.promise("P22", "P27", "P29")
def test_before_a_choice_no_cookie_and_no_third_party_request(
    fresh: Visit, tracker: ThirdParty, screenshot: Screenshot
) -> None:
    for path in ("/", "/privacy/", "/contact/", "/subprocessors/"):
        fresh.page.goto(fresh.site + path)
        expect(fresh.banner()).to_be_visible()
        assert fresh.cookies() == set(), path
    # The settings page is the choice itself: its form, and no banner repeating it.
    fresh.page.goto(fresh.site + "/cookies/")
    expect(fresh.banner()).to_have_count(0)
    expect(fresh.page.get_by_role("button", name="Refuse all")).to_have_count(1)
    assert fresh.cookies() == set()
    screenshot(fresh.page, "settings-before-choice")
    fresh.page.goto(fresh.site + "/")
    screenshot(fresh.page, "banner")
    fresh.page.goto(fresh.site + "/login/")
    assert fresh.cookies() <= {"csrftoken"}
    assert fresh.foreign == []
    assert ConsentRecord.objects.count() == 0


@pytest.mark.promise("P22", "P27")
def test_refuse_all_sets_only_the_consent_cookie_and_loads_no_tag(
    fresh: Visit, tracker: ThirdParty, screenshot: Screenshot
) -> None:
    fresh.page.goto(fresh.site + "/")
    fresh.banner().get_by_role("button", name="Refuse all").click()
    expect(fresh.banner()).to_have_count(0)
    assert fresh.cookies() == {CONSENT}
    for path in ("/", "/privacy/", "/cookies/"):
        fresh.page.goto(fresh.site + path)
    screenshot(fresh.page, "settings-after-refusal")
    assert fresh.foreign == []
    record = ConsentRecord.objects.get()
    assert record.categories == [] and record.method == "banner"


@pytest.mark.promise("P22", "P27")
def test_accepting_analytics_only_loads_the_analytics_tag_and_withdrawal_stops_it(
    fresh: Visit, tracker: ThirdParty, screenshot: Screenshot
) -> None:
    fresh.page.goto(fresh.site + "/")
    banner = fresh.banner()
    banner.get_by_label("Analytics").check()
    screenshot(fresh.page, "analytics-ticked")
    banner.get_by_role("button", name="Confirm my selection").click()
    expect(fresh.banner()).to_have_count(0)
    assert fresh.cookies() == {CONSENT}
    fresh.page.wait_for_function("window.tracked === true")
    assert fresh.foreign == [TAG]
    assert ConsentRecord.objects.get().categories == ["analytics"]

    # Withdrawing: the footer link, then one click.
    fresh.foreign.clear()
    fresh.page.get_by_role("link", name="Cookie settings").click()
    expect(fresh.page.get_by_role("heading", name="Cookie settings")).to_be_visible()
    fresh.foreign.clear()
    fresh.page.get_by_role("button", name="Refuse all").click()
    expect(fresh.page.get_by_text("strictly necessary cookies only")).to_be_visible()
    fresh.page.goto(fresh.site + "/")
    assert fresh.foreign == []
    assert [r.categories for r in ConsentRecord.objects.order_by("pk")] == [["analytics"], []]


@pytest.mark.promise("P28")
@pytest.mark.parametrize(
    ("header", "signal"), [("DNT", "Do Not Track"), ("Sec-GPC", "Global Privacy Control")]
)
def test_dnt_and_gpc_mean_no_tag_even_after_accept_all(
    browser: Browser,
    site: str,
    tracker: ThirdParty,
    screenshot: Screenshot,
    header: str,
    signal: str,
) -> None:
    for v in visit(browser, site, {header: "1"}):
        v.page.goto(v.site + "/")
        expect(v.banner()).to_contain_text(f"Your browser sent a {signal} signal. We honour it")
        screenshot(v.page, "banner-with-signal")
        v.banner().get_by_role("button", name="Accept all").click()
        expect(v.banner()).to_have_count(0)
        v.page.goto(v.site + "/cookies/")
        expect(v.page.get_by_role("status").first).to_contain_text(signal)
        screenshot(v.page, "settings-with-signal")
        assert v.cookies() == {CONSENT}
        assert v.foreign == []
        record = ConsentRecord.objects.get()
        assert "analytics" not in record.categories and "advertising" not in record.categories


def run_axe(page: Page) -> list[str]:
    # Loaded from the page's own origin (the browser answers it from the file, the
    # server never sees it): the page's Content-Security-Policy refuses inline scripts,
    # and it stays on while the page is checked.
    own = page.url.split("/", 3)
    page.route("**/__axe-core.js", lambda route: route.fulfill(path=AXE))
    page.add_script_tag(url=f"{own[0]}//{own[2]}/__axe-core.js")
    result = page.evaluate("() => axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.promise("P22")
def test_banner_and_main_pages_have_no_serious_accessibility_violation(
    fresh: Visit, tracker: ThirdParty
) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `npm ci --prefix tools/axe` (./dev test does it)")
    found = {}
    for path in (
        "/",
        "/cookies/",
        "/subprocessors/",
        "/privacy/",
        "/contact/",
        "/login/",
        "/register/",
    ):
        fresh.page.goto(fresh.site + path)
        violations = run_axe(fresh.page)
        if violations:
            found[path] = violations
    assert found == {}


@pytest.mark.promise("P22")
def test_the_banner_works_with_the_keyboard_alone(fresh: Visit) -> None:
    fresh.page.goto(fresh.site + "/")
    refuse = fresh.banner().get_by_role("button", name="Refuse all")
    for _ in range(30):
        fresh.page.keyboard.press("Tab")
        if refuse.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Refuse all cannot be reached with Tab")
    fresh.page.keyboard.press("Enter")
    expect(fresh.banner()).to_have_count(0)
    assert fresh.cookies() == {CONSENT}
