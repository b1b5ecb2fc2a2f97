"""The home page: open to anyone, and one click from the privacy policy."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.public.pages import read


@pytest.mark.promise("P30")
def test_home_page_links_to_the_policy_with_privacy_in_the_link_text(client, db):
    page = read(client.get(reverse("public:home")))

    policy_links = [link for link in page.links if "privacy" in link.text.lower()]
    assert policy_links, "no link whose text contains 'Privacy'"
    assert all(link.href == reverse("public:privacy") for link in policy_links)


@pytest.mark.promise("P30")
@pytest.mark.parametrize("name", ["accounts:login", "accounts:register", "public:contact"])
def test_other_pages_link_to_the_policy_from_the_footer(client, db, name):
    page = read(client.get(reverse(name)))

    assert any(
        "privacy" in link.text.lower() and link.href == reverse("public:privacy")
        for link in page.links
    )


def test_pages_name_their_own_icon_so_no_browser_asks_for_a_missing_one(client, db):
    """Without a declared icon every browser asks for /favicon.ico and logs a 404 in the
    console on every page."""
    page = client.get("/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert finders.find("favicon.svg")
