"""Issue 14's "done when", as a new user does it in Chromium: sign up, land on the
dashboard, upload an image, start a campaign from a gallery template, design it in the
visual editor with that image, send it to a list, and read its report with rates and
clicks per link.

A real SMTP server (aiosmtpd) receives the confirmation mail and the campaign; the
recipients' opens and clicks are the tracking links in the mail they received. Nothing
on the way is requested from another origin. Screenshots at desktop (1280 px) and phone
(375 px) widths go to test-artifacts/e2e/<this test>/.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from PIL import Image
from playwright.sync_api import Page, expect

from tests.conftest import SMTPSink
from tests.e2e.conftest import Screenshot
from tests.e2e.test_customer_journey import mail_to, text_of
from tidings.accounts.models import User
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign, MediaImage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "mia@bakery.example"
PASSWORD = "a long enough passphrase"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 600), (160, 90, 30)).save(out, "JPEG")
    return out.getvalue()


def both_widths(page: Page, screenshot: Screenshot, name: str) -> None:
    """A screenshot at desktop width, then at phone width (no sideways scroll), then back."""
    screenshot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = page.evaluate(
        "w => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > w)"
        ".map(e => e.tagName + '.' + e.className + '#' + e.id).slice(-5)",
        widths[1],
    )
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)
    assert widths[0] <= widths[1], f"{name} scrolls sideways on a phone: {widths} {wide}"


@pytest.mark.promise("P29", "P26")
def test_a_new_user_designs_sends_and_reads_the_report(
    live_server, settings, smtp_mail: SMTPSink, page: Page, screenshot: Screenshot
) -> None:
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    # The gallery renders its templates' previews and the editor loads GrapesJS: on a
    # busy machine that takes more than the usual ten seconds.
    page.set_default_timeout(60_000)
    elsewhere: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if r.url.startswith(("http:", "https:")) and not r.url.startswith(site)
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Sign up, confirm the address from the mail, log in: the dashboard.
    page.goto(site + "/register/")
    page.get_by_label("Organisation name:", exact=True).fill("Mia's Bakery")
    page.get_by_label("Your name:", exact=True).fill("Mia Baker")
    page.get_by_label("Email:", exact=True).fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = re.search(r"https?://\S+/confirm/\S+/", text_of(mail_to(smtp_mail, EMAIL, "Confirm")))
    assert link
    page.goto(link.group(0))
    page.get_by_label("Email:", exact=True).fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.get_by_role("button", name="Refuse all").click()
    both_widths(page, screenshot, "dashboard")
    user = User.objects.get(email=EMAIL)
    account = user.account
    assert account is not None

    # Their readers (an import is its own test: tests/e2e/test_import_export.py), per-
    # contact tracking and the postal address, as the settings page takes them.
    news = MailingList.objects.create(account=account, name="Bakery news")
    for i, domain in enumerate(("gmail.com", "gmail.com", "outlook.com", "example.org")):
        audience.add_contact(account, f"reader{i}@{domain}", name=f"Reader {i}", lists=[news])
    page.goto(site + "/sending/")
    page.get_by_label("Opens and clicks").select_option("contact")
    page.locator("form:has(input[value=tracking])").get_by_role("button", name="Save").click()
    page.get_by_label("Postal address shown in every campaign").fill("3 Flour Street, Lyon")
    page.get_by_role("button", name="Save address").click()
    expect(page.get_by_text("Postal address saved.")).to_be_visible()

    # An image into the media library.
    page.goto(site + "/images/")
    page.get_by_label("Image to upload").set_input_files(
        {"name": "loaves.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Added loaves.jpg")
    image = MediaImage.objects.get(account=account, name="loaves.jpg")

    # The gallery: the visual newsletter, as a new campaign.
    page.goto(site + "/templates/")
    expect(page.get_by_role("heading", name="Designed by Tidings")).to_be_visible()
    both_widths(page, screenshot, "gallery")
    page.get_by_role("link", name="Use this template Newsletter for the visual editor").click()
    page.get_by_label("Campaign name (only you see it)").fill("Rye week")
    page.get_by_label("From address").fill("news@bakery.example")
    page.get_by_role("checkbox", name="Bakery news").check()
    page.get_by_label("Count opens (a tracking pixel)").check()
    page.get_by_label("Count clicks (links go through Tidings)").check()
    page.get_by_role("button", name="Save and preview").click()
    campaign = Campaign.objects.get(account=account)
    assert campaign.content_format == Campaign.Format.VISUAL

    # The visual editor: the template's placeholder image becomes the uploaded one,
    # chosen in the editor's image library, and the story's text becomes theirs.
    page.goto(site + f"/campaigns/{campaign.uuid}/visual/")
    expect(page.locator("#visual-editor[data-ready=true]")).to_be_attached(timeout=20_000)
    canvas = page.frame_locator("#gjs iframe").first
    expect(canvas.get_by_text("Second story")).to_be_visible()
    page.evaluate(
        "() => { const e = tidingsEditor; const img = e.getWrapper().findType('mj-image')[0];"
        " e.select(img); e.runCommand('open-assets', {target: img, types: ['image'],"
        " select(asset) { img.set('src', asset.getSrc()); e.Modal.close(); }}); }"
    )
    page.locator(".gjs-am-asset").filter(has_text="loaves.jpg").first.click()
    page.evaluate(
        "() => { const t = tidingsEditor.getWrapper().findType('mj-text')[3];"
        " t.components('Rye loaves are back on Saturday.'); }"
    )
    expect(canvas.locator(f"img[src*='{image.key}']")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    both_widths(page, screenshot, "visual-editor")
    campaign.refresh_from_db()
    assert image.key in campaign.body and "Rye loaves are back" in campaign.body

    # Preview, then send now (the tests' tasks run at once: a worker's job).
    page.goto(site + f"/campaigns/{campaign.uuid}/preview/")
    expect(page.locator("#preview-subject")).to_have_text("News for you, Alex")
    both_widths(page, screenshot, "preview")
    page.goto(site + f"/campaigns/{campaign.uuid}/")
    page.locator("section.send-controls").get_by_role("button", name="Send now").click()
    expect(page.get_by_role("link", name="Open the report")).to_be_visible(timeout=20_000)
    mails = [m for m in smtp_mail.messages if "Reader" in str(m["To"]) or "reader" in str(m["To"])]
    assert len(mails) == 4

    # Three readers open it, two click the story's link (one twice), as their mail
    # program would follow the tracking links.
    reader = Client()
    for n, mail in enumerate(sorted(mails, key=lambda m: str(m["To"]))):
        html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        pixel = re.search(r'src="(https?://[^"]+/t/o/[^"]+)"', html)
        clicks = re.findall(r'href="(https?://[^"]+/t/c/[^"]+)"', html)
        assert pixel and clicks, html[:500]
        if n < 3:
            assert reader.get(urlsplit(pixel.group(1)).path).status_code == 200
        if n < 2:
            for _ in range(n + 1):
                assert reader.get(urlsplit(clicks[0]).path).status_code == 302

    page.get_by_role("link", name="Open the report").click()
    expect(page.get_by_role("heading", name="Report: Rye week")).to_be_visible()
    figure = page.locator("#figure-delivered")
    expect(figure).to_contain_text("100.0 %")
    expect(page.locator("#figure-opened")).to_contain_text("75.0 %")
    expect(page.locator("#figure-clicked")).to_contain_text("50.0 %")
    expect(page.locator("#figure-click_to_open")).to_contain_text("66.7 %")
    expect(page.get_by_text("Subject: News for you, [first name]")).to_be_visible()
    links = page.locator("#links")
    expect(links).to_contain_text("https://example.com/story")
    expect(links.get_by_role("row").nth(1)).to_contain_text("3")
    page.wait_for_function("() => document.querySelector('#report-chart').width > 0")
    both_widths(page, screenshot, "report")
    assert elsewhere == [], elsewhere
    assert errors == [], errors
