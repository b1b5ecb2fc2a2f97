"""Headers for privacy's sake (core.headers): no page may ask for the camera, location
and the like, and no page with someone's data stays in a cache."""

from __future__ import annotations

from tests.audience.conftest import path_of
from tidings.audience import links, services


def test_every_page_refuses_the_browsers_powerful_features(client, db):
    response = client.get("/")
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "browsing-topics=()"):
        assert feature in policy
    # A public page may be cached: it holds nobody's data.
    assert "no-store" not in response.get("Cache-Control", "")


def test_a_logged_in_users_pages_are_never_stored(client, customer):
    client.force_login(customer)
    response = client.get("/account/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_contacts_own_pages_are_never_stored(client, customer):
    contact = services.add_contact(customer.account, "reader@example.org", name="Rea Der")
    page = path_of(links.preference_url(contact))
    for path in (page, f"{page}data/", path_of(links.unsubscribe_url(contact))):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"], path
