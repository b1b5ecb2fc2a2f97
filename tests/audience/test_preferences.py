"""The contact's own page (signed link, no login): leave one list, leave everything,
correct their details, refuse tracking. Tampered links change nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.audience.conftest import path_of
from tidings.audience import links, mailability, mailing_lists, services, setup
from tidings.audience.models import Contact, Subscription
from tidings.sending import tracking


def test_links_are_absolute_and_carry_no_address(reader, settings):
    for url in (links.preference_url(reader), links.unsubscribe_url(reader)):
        assert url.startswith(settings.BASE_URL + "/")
        assert "reader" not in url and "example.org" not in url.split("://", 1)[1].split("/", 1)[1]


def test_links_follow_the_base_url_when_it_changes(reader, settings):
    """The link builders keep their parsed paths, never the base URL: a server that
    moves (or a test's live server) gets links to where it is now."""

    links.preference_url(reader), tracking.unsubscribe_url(reader)
    settings.BASE_URL = "https://news.example.net"
    for url in (links.preference_url(reader), tracking.unsubscribe_url(reader)):
        assert url.startswith("https://news.example.net/"), url


def test_the_preference_page_shows_the_contacts_lists(client, reader):
    page = client.get(path_of(links.preference_url(reader))).content.decode()
    assert "reader@example.org" in page and "Newsletter" in page and "Offers" in page


@pytest.mark.promise("P21")
def test_leaving_one_list_takes_effect_at_once_and_is_recorded(
    client, account, reader, newsletter, offers
):
    path = path_of(links.preference_url(reader))
    response = client.post(path, {"action": "leave", "list": str(newsletter.uuid)})
    assert "You have left “Newsletter”" in response.content.decode()
    sub = Subscription.objects.get(contact=reader, mailing_list=newsletter)
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
    assert not mailability.recipients(account, [newsletter.pk]).exists()
    assert mailability.recipients(account, [offers.pk]).exists()


@pytest.mark.promise("P21")
def test_leaving_everything_stops_all_mail(client, account, reader, offers):
    client.post(path_of(links.preference_url(reader)), {"action": "leave_all"})
    reader.refresh_from_db()
    assert reader.status == Contact.Status.UNSUBSCRIBED
    assert set(Subscription.objects.filter(contact=reader).values_list("status", flat=True)) == {
        "unsubscribed"
    }
    assert not mailability.recipients(account, [offers.pk]).exists()


def test_the_contact_edits_their_name_and_the_attributes_the_customer_allows(
    client, account, reader
):
    setup.set_editable_attributes(account, ["city", "birthday"])
    path = path_of(links.preference_url(reader))
    page = client.get(path).content.decode()
    assert 'name="attr:city"' in page and 'name="attr:vip"' not in page
    client.post(
        path,
        {
            "action": "save",
            "name": "Rea King",
            "attr:city": "Antwerp",
            "attr:birthday": "1990-04-01",
            "attr:vip": "no",  # not editable: ignored
            "allow_tracking": "on",
        },
    )
    reader.refresh_from_db()
    assert reader.name == "Rea King"
    assert reader.attributes == {"city": "Antwerp", "vip": True, "birthday": "1990-04-01"}
    assert reader.allow_tracking and not reader.allow_profiling


def test_a_detail_that_is_zero_is_shown_and_kept_when_saving(client, account, reader):
    """The form sends back what it shows: a 0 shown as an empty field was erased."""
    services.update_contact(reader, attributes={"children": 0})
    setup.set_editable_attributes(account, ["children"])
    path = path_of(links.preference_url(reader))
    shown = re.search(r'name="attr:children" value="([^"]*)"', client.get(path).content.decode())
    assert shown is not None and shown.group(1) == "0"
    client.post(path, {"action": "save", "name": "Rea Der", "attr:children": shown.group(1)})
    reader.refresh_from_db()
    assert reader.attributes["children"] == 0


def test_by_default_contacts_edit_only_their_name(client, reader):
    path = path_of(links.preference_url(reader))
    client.post(path, {"action": "save", "name": "X", "attr:city": "Paris"})
    reader.refresh_from_db()
    assert reader.name == "X" and reader.attributes["city"] == "Ghent"


@pytest.mark.parametrize("make", [links.preference_url, links.unsubscribe_url])
def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(client, reader, make):
    path = path_of(make(reader))
    token = path.rstrip("/").rsplit("/", 1)[-1]
    for broken in (token[:-4] + "AAAA", token.replace(":", ":x", 1), "nonsense", reader.uuid.hex):
        response = client.post(f"{path.rsplit(token, 1)[0]}{broken}/", {"action": "leave_all"})
        assert response.status_code == 400, broken
        assert "This link does not work" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == "active"
    assert not Subscription.objects.filter(contact=reader, status="unsubscribed").exists()


def test_a_token_of_another_kind_is_refused(client, reader, newsletter):
    """An unsubscribe token is no preference token, though both are ours."""
    token = links.unsubscribe_token(reader)
    assert client.post(f"/p/{token}/", {"action": "leave_all"}).status_code == 400
    token = links.preference_token(reader)
    assert client.post(f"/u/{token}/").status_code == 400
    reader.refresh_from_db()
    assert reader.status == "active"


def test_an_expired_preference_link_still_lets_the_contact_leave(client, reader, settings, mailbox):
    path = path_of(links.preference_url(reader))
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    with time_machine.travel(later):
        page = client.get(path).content.decode()
        assert "This link has expired" in page and "reader@example.org" not in page
        client.post(path, {"action": "save", "name": "Changed"})
        reader.refresh_from_db()
        assert reader.name == "Rea Der"
        client.post(path, {"action": "send_link"})
        client.post(path, {"action": "leave_all"})
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    (mail,) = [m for m in mailbox if "reader@example.org" in m.to]
    assert "/p/" in mail.body


@pytest.mark.promise("P21")
def test_one_click_unsubscribe_from_the_list_header(client, account, reader, newsletter, offers):
    """RFC 8058: the mail provider POSTs to the List-Unsubscribe address, without cookies."""
    path = path_of(links.unsubscribe_url(reader, newsletter))
    page = client.get(path)
    assert "Leave “Newsletter”?" in page.content.decode()
    assert Subscription.objects.get(contact=reader, mailing_list=newsletter).status == "confirmed"
    from django.test import Client

    provider = Client(enforce_csrf_checks=True)
    response = provider.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert (
        Subscription.objects.get(contact=reader, mailing_list=newsletter).status == "unsubscribed"
    )
    assert Subscription.objects.get(contact=reader, mailing_list=offers).status == "confirmed"


def test_an_unsubscribe_link_without_a_list_leaves_everything_even_when_old(client, reader):
    path = path_of(links.unsubscribe_url(reader))
    with time_machine.travel(timezone.now() + timedelta(days=3650)):
        client.post(path)
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"


def test_the_link_of_an_erased_contact_says_so(client, reader):
    path = path_of(links.preference_url(reader))
    services.erase_contact(reader)
    response = client.get(path)
    assert response.status_code == 400 and "no longer hold" in response.content.decode()


def test_a_list_of_another_account_cannot_be_left_through_a_link(client, reader, other_customer):
    theirs = mailing_lists.save_list(other_customer.account, name="Theirs")
    stranger = services.add_contact(other_customer.account, "reader@example.org", lists=[theirs])
    client.post(
        path_of(links.preference_url(reader)), {"action": "leave", "list": str(theirs.uuid)}
    )
    assert Subscription.objects.get(contact=stranger).status == "confirmed"


def test_the_settings_page_chooses_the_editable_attributes(logged_in, account):
    logged_in.post("/audience/settings/", {"editable_attributes": "city, birthday"})
    assert services.editable_attributes(account) == ["birthday", "city"]
    response = logged_in.post("/audience/settings/", {"editable_attributes": 'ok, bad"key'})
    assert "is not an attribute name" in response.content.decode()
    assert services.editable_attributes(account) == ["birthday", "city"]


def test_an_unsubscribe_link_older_than_a_preference_link_leaves_but_shows_no_data(
    client, reader, newsletter, settings, mailbox
):
    path = path_of(links.unsubscribe_url(reader, newsletter))
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    with time_machine.travel(later):
        page = client.get(path).content.decode()
        assert "/p/" not in page and "Mail me a new link" in page
        page = client.post(path, {"action": "send_link"}).content.decode()
        assert "/p/" not in page
        assert Subscription.objects.get(contact=reader, mailing_list=newsletter).status == (
            "confirmed"
        )
        page = client.post(path, {"List-Unsubscribe": "One-Click"}).content.decode()
        assert "/p/" not in page
    assert Subscription.objects.get(contact=reader, mailing_list=newsletter).status == (
        "unsubscribed"
    )
    (mail,) = [m for m in mailbox if "reader@example.org" in m.to]
    assert "/p/" in mail.body


def test_a_recent_unsubscribe_link_leads_to_the_preference_page(client, reader):
    page = client.get(path_of(links.unsubscribe_url(reader))).content.decode()
    assert "/p/" in page


def test_viewing_the_preference_page_reads_the_contact_once(
    client, reader, django_assert_max_num_queries
):
    """Every mail links here: a look changes nothing, so nothing is read twice (the
    contact, then its account, were read again after the view had them)."""
    path = path_of(links.preference_url(reader))
    client.get(path)
    # Contact with account, settings, open requests, subscriptions, the page counter.
    with django_assert_max_num_queries(5):
        assert client.get(path).status_code == 200
