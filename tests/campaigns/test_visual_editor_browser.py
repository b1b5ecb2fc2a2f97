"""The visual editor in Chromium: GrapesJS with its MJML preset, served by Tidings.

The page makes no request to another origin (P29: GrapesJS asks a CDN for its icon font
and MJML for Google fonts by default) and breaks no rule of its Content-Security-Policy;
a customer adds blocks, inserts a personalisation tag from the menu, undoes, switches to
the phone view, saves, and the campaign's preview shows the design personalised.
Screenshots go to test-artifacts/campaigns/visual/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import browser  # noqa: F401  (fixture)
from tidings.campaigns import gallery, media, services
from tidings.campaigns.models import Campaign

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "campaigns" / "visual"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.promise("P29")
def test_a_customer_designs_a_campaign_in_the_visual_editor_with_nothing_from_elsewhere(
    live_server,
    settings,
    browser: Browser,  # noqa: F811
    customer,
):
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.BASE_URL = live_server.url
    site = str(live_server.url)
    campaign = services.create_campaign(
        customer.account, by=customer, name="Autumn", subject="Autumn news",
        from_name="Acme", from_email="news@acme.example", content_format="markdown",
        body="Hello",
    )  # fmt: skip
    out = io.BytesIO()
    Image.new("RGB", (800, 400), (30, 90, 160)).save(out, "PNG")
    media.upload_image(customer.account, name="banner.png", data=out.getvalue(), by=customer)
    client = Client()
    client.force_login(customer)
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}]
    )
    page = context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if r.url.startswith(("http:", "https:")) and not r.url.startswith(site)
            else None
        ),
    )
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(site + reverse("campaigns:visual", args=[campaign.uuid]))
        expect(page.locator("#visual-editor[data-ready=true]")).to_be_attached(timeout=20_000)
        canvas = page.frame_locator("#gjs iframe").first
        expect(canvas.get_by_text("Write your news here")).to_be_visible()
        # GrapesJS's panels, in words (no icon font from a CDN); the blocks open first.
        for label in ("Blocks", "Style", "Layers", "Code"):
            expect(page.locator(".gjs-pn-btn", has_text=label).first).to_be_visible()
        for block in ("Footer", "Social links", "Image", "Text", "Button", "Divider", "Spacer"):
            expect(page.locator(".gjs-block", has_text=block).first).to_be_visible()
        page.get_by_role("button", name="Refuse all").click()
        shot(page, "01-editor-desktop")
        before = page.evaluate("() => tidingsEditor.getHtml()")
        # Blocks: add the footer, the social links and an image through the block manager.
        for block, into in (
            ("tidings-footer", "mj-body"),
            ("tidings-social", "mj-column"),
            ("tidings-image", "mj-column"),
            ("mj-2-columns", "mj-body"),
        ):
            page.evaluate(
                "([id, into]) => { const e = tidingsEditor; const b = e.Blocks.get(id);"
                " e.getWrapper().findType(into)[0].append(b.get('content')); }",
                [block, into],
            )
        html = page.evaluate("() => tidingsEditor.getHtml()")
        assert "mj-social" in html and "campaign.postal_address" in html
        # Undo takes the last block away again.
        page.get_by_role("button", name="Undo").click()
        assert page.evaluate("() => tidingsEditor.getHtml()").count("mj-column") < html.count(
            "mj-column"
        )
        # A personalisation tag from the menu, into the selected text block.
        page.evaluate(
            "() => { tidingsEditor.select(tidingsEditor.getWrapper().findType('mj-text')[1]); }"
        )
        page.get_by_role("toolbar").get_by_label("Insert a personalisation tag").select_option(
            label="Email address"
        )
        assert "{{ contact.email }}" in page.evaluate("() => tidingsEditor.getHtml()")
        page.get_by_role("button", name="Phone").click()
        page.wait_for_function(
            "() => document.querySelector('#gjs iframe').getBoundingClientRect().width < 400"
        )
        shot(page, "02-editor-phone")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        assert before != page.evaluate("() => tidingsEditor.getHtml()")
        assert elsewhere == [], elsewhere
        assert problems == [], problems
    finally:
        context.close()
    campaign.refresh_from_db()
    assert campaign.content_format == Campaign.Format.VISUAL
    assert "<mjml" in campaign.design["mjml"] and campaign.design["project"]
    assert "<mjml" not in campaign.body and "{{ contact.email }}" in campaign.body
    assert "googleapis" not in campaign.body and "mailjet.com" not in campaign.body


def test_the_visual_gallery_template_opens_in_the_editor_with_its_images(
    live_server,
    settings,
    browser: Browser,  # noqa: F811
    customer,
):
    settings.BASE_URL = live_server.url
    site = str(live_server.url)
    template = gallery.built_in("visual-newsletter")
    assert template is not None
    campaign = services.create_campaign(
        customer.account, by=customer, name="From the gallery", subject=template.subject,
        from_name="Acme", from_email="news@acme.example", content_format="visual",
        body="", design=template.design,
    )  # fmt: skip
    client = Client()
    client.force_login(customer)
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}]
    )
    page = context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if r.url.startswith(("http:", "https:")) and not r.url.startswith(site)
            else None
        ),
    )
    try:
        page.goto(site + reverse("campaigns:visual", args=[campaign.uuid]))
        expect(page.locator("#visual-editor[data-ready=true]")).to_be_attached(timeout=20_000)
        canvas = page.frame_locator("#gjs iframe").first
        expect(canvas.get_by_text("Second story")).to_be_visible()
        placeholder = canvas.locator("img[src$='placeholder.png']").first
        expect(placeholder).to_be_visible()
        assert placeholder.evaluate("img => img.naturalWidth") > 0
        page.get_by_role("button", name="Refuse all").click()
        shot(page, "03-gallery-template-in-editor")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        assert elsewhere == []
    finally:
        context.close()


def test_the_style_panels_icons_draw_from_tidings_own_icon_font(
    live_server,
    settings,
    browser: Browser,  # noqa: F811
    customer,
):
    """The style manager's choices (text alignment...) are Font Awesome glyphs: the font
    is Tidings's own copy (frontend/editor/vendor), loaded, and each icon has a glyph
    of real size (they were empty boxes while GrapesJS's CDN default was switched off)."""
    settings.BASE_URL = live_server.url
    site = str(live_server.url)
    campaign = services.create_campaign(
        customer.account, by=customer, name="Icons", subject="Icons", from_name="Acme",
        from_email="news@acme.example", content_format="markdown", body="Hello",
    )  # fmt: skip
    client = Client()
    client.force_login(customer)
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}]
    )
    page = context.new_page()
    fonts: list[str] = []
    page.on("request", lambda r: fonts.append(r.url) if "fontawesome" in r.url else None)
    try:
        page.goto(site + reverse("campaigns:visual", args=[campaign.uuid]))
        expect(page.locator("#visual-editor[data-ready=true]")).to_be_attached(timeout=20_000)
        page.get_by_role("button", name="Refuse all").click()
        page.evaluate(
            "() => { tidingsEditor.select(tidingsEditor.getWrapper().findType('mj-text')[0]); }"
        )
        page.locator(".gjs-pn-btn", has_text="Style").first.click()
        # Every sector open, as a customer unfolds them.
        page.evaluate(
            "() => { tidingsEditor.StyleManager.getSectors().forEach(s => s.setOpen(true)); }"
        )
        icons = page.locator(".gjs-sm-properties .fa >> visible=true")
        expect(icons.first).to_be_visible()
        page.wait_for_function("() => document.fonts.check('14px FontAwesome')")
        drawn = icons.evaluate_all(
            "els => els.filter(e => e.offsetParent).map(e => {"
            " const before = getComputedStyle(e, '::before');"
            " const r = e.getBoundingClientRect();"
            " return [e.className, before.content, before.fontFamily, r.width, r.height]; })"
        )
        assert len(drawn) >= 4, drawn  # left, center, right, justify at least
        for name, glyph, family, width, height in drawn:
            assert glyph not in ("none", "normal", '""'), name
            assert "FontAwesome" in family, (name, family)
            assert width > 0 and height > 0, (name, width, height)
        assert fonts and all(url.startswith(site + "/static/") for url in fonts), fonts
        shot(page, "04-style-panel-icons")
    finally:
        context.close()
