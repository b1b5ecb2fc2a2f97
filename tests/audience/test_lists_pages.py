"""Lists in the browser: create, edit, delete, counts per subscription status."""

from __future__ import annotations

import pytest

from tidings.audience import mailing_lists, services
from tidings.audience.models import MailingList, Subscription


def test_a_customer_creates_a_list_from_the_page(logged_in, account):
    response = logged_in.post(
        "/lists/new/",
        {
            "name": "Weekly digest",
            "description": "Every Friday",
            "visibility": "public",
            "optin": "single",
        },
    )
    assert response.status_code == 302
    created = MailingList.objects.get(account=account, name="Weekly digest")
    assert (created.visibility, created.optin, created.description) == (
        "public",
        "single",
        "Every Friday",
    )
    page = logged_in.get("/lists/").content.decode()
    assert "Weekly digest" in page


def test_the_lists_page_counts_subscriptions_by_status(logged_in, account, newsletter):
    a = services.add_contact(account, "a@example.org", lists=[newsletter])
    services.add_contact(account, "b@example.org", lists=[newsletter])
    services.add_contact(account, "c@example.org", lists=[newsletter], confirmed=False)
    services.unsubscribe(a, newsletter)
    response = logged_in.get("/lists/")
    rows = response.context["rows"]
    (counts,) = [c for m, c in rows if m == newsletter]
    assert counts == {"confirmed": 1, "unconfirmed": 1, "unsubscribed": 1}


def test_a_duplicate_list_name_is_refused_and_nothing_changes(logged_in, account, newsletter):
    other = mailing_lists.save_list(account, name="Offers")
    response = logged_in.post(
        f"/lists/{other.uuid}/",
        {"name": "newsletter", "visibility": "private", "optin": "double"},
    )
    assert response.status_code == 200
    assert "already have a list called" in response.content.decode()
    other.refresh_from_db()
    assert other.name == "Offers"


def test_editing_a_list_changes_it(logged_in, newsletter):
    response = logged_in.post(
        f"/lists/{newsletter.uuid}/",
        {"name": "News", "description": "", "visibility": "private", "optin": "single"},
    )
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert (newsletter.name, newsletter.visibility, newsletter.optin) == (
        "News",
        "private",
        "single",
    )


def test_a_list_made_private_leaves_the_forms_that_offered_it(logged_in, signup_form, offers):
    logged_in.post(
        f"/lists/{offers.uuid}/",
        {"name": "Offers", "visibility": "private", "optin": "single"},
    )
    assert offers not in signup_form.lists.all()


def test_deleting_a_list_keeps_its_contacts(logged_in, account, newsletter):
    contact = services.add_contact(account, "a@example.org", lists=[newsletter])
    assert logged_in.get(f"/lists/{newsletter.uuid}/delete/").status_code == 200
    response = logged_in.post(f"/lists/{newsletter.uuid}/delete/")
    assert response.status_code == 302
    assert not MailingList.objects.filter(pk=newsletter.pk).exists()
    assert not Subscription.objects.filter(contact=contact).exists()
    contact.refresh_from_db()


@pytest.mark.parametrize("suffix", ["", "delete/"])
def test_another_accounts_list_is_not_found_and_not_changed(logged_in, other_customer, suffix):
    theirs = mailing_lists.save_list(other_customer.account, name="Their list")
    for method in ("get", "post"):
        response = getattr(logged_in, method)(
            f"/lists/{theirs.uuid}/{suffix}",
            {"name": "Mine now", "visibility": "public", "optin": "single"},
        )
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their list"


def test_staff_without_an_account_see_no_audience(client, staff):
    client.force_login(staff)
    assert client.get("/lists/").status_code == 404
    assert client.get("/contacts/").status_code == 404


def test_the_audience_pages_need_a_login(client):
    response = client.get("/contacts/")
    assert response.status_code == 302 and "/login/" in response["Location"]
