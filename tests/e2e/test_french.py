"""French in a real browser: Chromium that asks for French gets the site in French; a
customer who chooses French in My Account gets the whole interface in French."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live_server, settings) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)


def test_a_french_browser_gets_the_home_page_and_the_login_in_french(
    browser: Browser, site: str, screenshot: Screenshot, transactional_db
):
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(site + "/")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Newsletters et campagnes, avec la confidentialité intégrée"
        )
        screenshot(page, "home-fr")
        page.get_by_role("link", name="Se connecter").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
        expect(page.get_by_label("Mot de passe")).to_be_visible()
        expect(page.get_by_role("link", name="Mot de passe oublié ?")).to_be_visible()
        screenshot(page, "login-fr")
    finally:
        context.close()


def test_a_customer_switches_to_french_in_my_account(
    browser: Browser, site: str, screenshot: Screenshot, transactional_db
):
    user = UserFactory(email="marie@example.org", name="Marie Curie")
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    try:
        page.goto(site + "/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(site + "/account/")
        expect(page.get_by_role("heading", level=1)).to_have_text("My Account")
        page.get_by_label("Language:", exact=True).select_option("fr")
        page.get_by_label("Time zone:").select_option("Europe/Paris")
        page.locator("#locale-h + form").get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Mon compte")
        expect(page.get_by_text("Enregistré.")).to_be_visible()
        screenshot(page, "my-account-fr")
        page.get_by_role("link", name="Audience").click()
        expect(page.get_by_role("link", name="Ajouter un contact")).to_be_visible()
        expect(page.get_by_role("navigation", name="Principal")).to_contain_text("Campagnes")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        screenshot(page, "contacts-fr")
        assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", page.content())
    finally:
        context.close()
