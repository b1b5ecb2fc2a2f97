"""Headers for privacy's sake (core.headers): no page may ask for the camera, location
and the like, and no page with someone's data stays in a cache."""

from __future__ import annotations

import tidings
from tests.audience.conftest import path_of
from tidings.audience import links, mailing_lists, services
from tidings.campaigns.views import EDITOR_CSP
from tidings.core import headers


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


# --- Content-Security-Policy on every page ----------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_every_page_has_a_content_security_policy_of_its_own_sources(client, customer):
    contact = services.add_contact(customer.account, "reader@example.org")
    pages = ["/", "/privacy/", "/login/", "/register/", path_of(links.preference_url(contact))]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = _directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"], path
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    client.force_login(customer)
    for path in ("/account/", "/contacts/", "/segments/new/", "/forms/new/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]


def test_the_campaign_editor_keeps_its_own_policy(client, customer):

    client.force_login(customer)
    response = client.get("/campaigns/new/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == EDITOR_CSP


def test_no_template_has_an_inline_script_or_style_attribute():
    """The policy allows no inline script or style: a template that had one would break
    under it (mail layouts and the snippet for the customer's own site are not pages)."""
    import re
    from pathlib import Path

    root = Path(tidings.__file__).parent
    found = []
    for template in root.glob("**/templates/**/*.html"):
        text = template.read_text()
        if template.name == "snippet.html":
            continue
        if re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text):
            found.append(f"{template}: inline script")
        if re.search(r"\sstyle=\"|<style\b|\son[a-z]+=\"", text):
            found.append(f"{template}: inline style or handler")
    assert found == []


def test_a_hosted_form_may_lead_to_the_customers_thank_you_page(client, customer):

    offers = mailing_lists.save_list(customer.account, name="Offers", visibility="public")
    form = mailing_lists.save_form(
        customer.account, name="Shop", lists=[offers], consent_text="Yes",
        thank_you_url="https://shop.example/thanks?x=1",
    )  # fmt: skip
    response = client.get(f"/subscribe/{form.uuid}/")
    assert _directives(response["Content-Security-Policy"])["form-action"] == [
        "'self'", "https://shop.example"
    ]  # fmt: skip


def test_a_policy_source_cannot_rewrite_the_policy(rf):

    request = rf.get("/")
    headers.allow(request, "script-src", ["https://ok.example", "https://x.example; script-src *"])
    policy = _directives(headers.content_security_policy(request))
    assert policy["script-src"] == ["'self'", "https://ok.example"]
