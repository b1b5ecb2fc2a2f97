"""The gallery and the media library in Chromium.

Every gallery template, as the view renders it for the made-up contact, is opened at
375 pixels (a phone) in light and in emulated dark mode: no horizontal scroll, no
contrast violation found by axe-core, and no request but for Tidings's own images.
The gallery and images pages are walked as a customer does, at desktop and phone widths,
with screenshots kept in test-artifacts/campaigns/gallery/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.consent.conftest import AXE
from tests.e2e.conftest import browser  # noqa: F401  (fixture)
from tidings.campaigns import gallery
from tidings.campaigns.models import MediaImage
from tidings.core.baseurl import base_url

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "campaigns" / "gallery"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", name)
    page.screenshot(path=str(ARTIFACTS / f"{safe}.png"), full_page=True)


@pytest.fixture
def phone(browser: Browser) -> Iterator[tuple[Page, list[str]]]:  # noqa: F811
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    try:
        yield page, requests
    finally:
        context.close()


def serious_problems(page: Page) -> list[str]:
    """axe-core's serious and critical findings on a page of Tidings (its CSP refuses
    inline scripts, so axe is served as if from the page's own origin)."""
    own = page.url.split("/", 3)
    page.route("**/__axe-core.js", lambda route: route.fulfill(path=AXE))
    page.add_script_tag(url=f"{own[0]}//{own[2]}/__axe-core.js")
    result = page.evaluate("() => axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def contrast_problems(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {runOnly: ['color-contrast']})")
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"] + result["incomplete"]
    ]


@pytest.mark.parametrize("template", gallery.BUILT_IN, ids=lambda t: t.slug)
def test_each_gallery_template_fits_a_phone_and_is_readable_in_light_and_dark(
    template, phone, client: Client, customer
):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `npm ci --prefix tools/axe` (./dev test does it)")
    client.force_login(customer)
    response = client.get(reverse("campaigns:gallery_preview_html", args=[template.slug]))
    assert response.status_code == 200
    page, requests = phone
    page.set_content(response.content.decode())
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        shot(page, f"template-{template.slug}-375-{scheme}")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{template.slug} scrolls sideways in {scheme}: {widths}"
        assert contrast_problems(page) == [], f"{template.slug} in {scheme}"
    # Nothing from another origin: no font or script at all, images only from Tidings.
    assert [r for r in requests if not r.startswith(base_url() + "/static/")] == []


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.promise("P29")
def test_a_customer_uploads_an_image_and_starts_a_campaign_from_the_gallery(
    live_server,
    settings,
    browser: Browser,  # noqa: F811
    customer,
):
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.BASE_URL = live_server.url
    site = str(live_server.url)
    client = Client()
    client.force_login(customer)
    foreign: list[str] = []
    csp: list[str] = []
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}]
        )
        page = context.new_page()
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(site) else None)
        page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)

        page.goto(site + reverse("campaigns:media"))
        page.get_by_role("button", name="Refuse all").click()
        page.get_by_label("Image to upload").set_input_files(
            {"name": f"{name}.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1600, 900)}
        )
        page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"Added {name}.jpg (1200 by 675 pixels)")
        image = MediaImage.objects.get(account=customer.account, name=f"{name}.jpg")
        thumb = page.get_by_role("img", name=f"{name}.jpg")
        expect(thumb).to_be_visible()
        # A thumbnail below the fold (the phone's) is loaded once scrolled to (lazy).
        thumb.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=thumb.element_handle())
        assert thumb.evaluate("img => img.naturalWidth") == 1200
        assert image.key in page.get_by_label("Address to use in a campaign").first.input_value()
        shot(page, f"images-{name}")
        assert serious_problems(page) == []

        page.goto(site + reverse("campaigns:gallery"))
        expect(page.get_by_role("heading", name="Designed by Tidings")).to_be_visible()
        page.wait_for_load_state("networkidle")
        # Every preview loaded (Chromium opens six connections at a time to one host).
        page.wait_for_function(
            "n => performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/preview.html')).length >= n",
            arg=len(gallery.BUILT_IN),
        )
        # Chromium paints a cross-origin frame only once it has been on screen.
        for thumb in page.locator("iframe.gallery-thumb").all():
            thumb.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        shot(page, f"gallery-{name}")
        assert serious_problems(page) == []
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        page.get_by_role("link", name="Use this template Welcome").click()
        expect(page.locator("#id_body")).to_have_value(re.compile("Welcome, "))
        shot(page, f"new-from-template-{name}")
        assert foreign == [] and csp == []
        context.close()
