"""Rails before sending: each check of the send page's checklist, read from the message
as it would really go out, and each blocking rule refused server-side, by the service,
the page and the API alike; a large send needs its number confirmed."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.sending.conftest import add_contacts, proven
from tidings.accounts import apikeys
from tidings.campaigns.content import STARTER_BODY
from tidings.campaigns.models import Campaign, Layout
from tidings.outbox.models import OutboxMessage
from tidings.sending import checklist, lifecycle, proofs, services
from tidings.sending.models import SendingSettings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def states(campaign: Campaign) -> dict[str, str]:
    return {c.key: c.state for c in checklist.checklist(campaign).checks}


def check(campaign: Campaign, key: str) -> checklist.Check:
    (found,) = [c for c in checklist.checklist(campaign).checks if c.key == key]
    return found


def api(client, key: str, path: str, **json: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1{path}", data=json or None, content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip


def refused_everywhere(client, customer, campaign: Campaign, words: str) -> None:  # type: ignore[no-untyped-def]
    """The service, the send page and the API's send endpoint all refuse, saying why,
    and the campaign stays a draft."""
    with pytest.raises(lifecycle.SendingError, match=words):
        lifecycle.start_campaign(campaign)
    client.force_login(customer)
    page = client.post(f"/campaigns/{campaign.uuid}/send/", {"action": "send"}, follow=True)
    assert words in page.content.decode()
    key = apikeys.create_api_key(campaign.account, name="rails", by=customer)[1]
    answer = api(client, key, f"/campaigns/{campaign.uuid}/send")
    assert answer.status_code == 409 and words in answer.json()["detail"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not campaign.deliveries.exists()


# A campaign as it should be -----------------------------------------------------------------


def test_a_ready_campaign_has_nothing_blocking(account, newsletter, campaign):
    add_contacts(account, newsletter, 2)
    found = checklist.checklist(campaign)

    assert found.blocking == [] and found.recipients == 2 and not found.needs_confirmation
    by_key = {c.key: c for c in found.checks}
    assert by_key["subject"].detail == "“News for Alex”"
    assert by_key["unsubscribe"].state == checklist.PASSED
    assert by_key["postal_address"].state == checklist.PASSED
    assert "12 Baker Lane" in by_key["postal_address"].detail
    assert by_key["placeholder"].state == checklist.PASSED
    assert by_key["images"].state == checklist.PASSED
    assert by_key["size"].state == checklist.PASSED
    assert by_key["recipients"].detail == "2 contacts may be mailed now."


# Blocking: refused by the service, the page and the API ----------------------------------


def test_the_starter_body_cannot_be_sent(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 2)
    Campaign.objects.filter(pk=campaign.pk).update(
        body=STARTER_BODY, content_format=Campaign.Format.MARKDOWN
    )
    campaign.refresh_from_db()

    found = check(campaign, "placeholder")
    assert found.state == checklist.BLOCKING and "Write your news here" in found.detail
    assert found.fix_url == f"/campaigns/{campaign.uuid}/#id_body"
    refused_everywhere(client, customer, campaign, "starter text")


def test_the_starter_link_alone_is_still_a_placeholder(account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    campaign.body = '<p>Our news, with <a href="https://example.com">a link</a>.</p>'
    campaign.save()
    assert check(campaign, "placeholder").state == checklist.BLOCKING


def test_an_empty_body_cannot_be_sent(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    Campaign.objects.filter(pk=campaign.pk).update(body="")
    campaign.refresh_from_db()
    assert check(campaign, "placeholder").state == checklist.BLOCKING
    refused_everywhere(client, customer, campaign, "The message has no content.")


def test_no_subject_cannot_be_sent(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    Campaign.objects.filter(pk=campaign.pk).update(subject="  ")
    campaign.refresh_from_db()
    assert check(campaign, "subject").state == checklist.BLOCKING
    refused_everywhere(client, customer, campaign, "There is no subject.")


def test_no_recipients_cannot_be_sent(client, customer, account, newsletter, campaign):
    assert check(campaign, "recipients").state == checklist.BLOCKING
    refused_everywhere(client, customer, campaign, "Nobody would receive it.")


def test_unsubscribed_contacts_are_not_recipients(account, newsletter, campaign):
    (contact,) = add_contacts(account, newsletter, 1)
    assert check(campaign, "recipients").state == checklist.PASSED
    contact.status = contact.Status.UNSUBSCRIBED
    contact.save()
    assert check(campaign, "recipients").state == checklist.BLOCKING


def test_a_layout_that_hides_the_unsubscribe_link_cannot_be_sent(
    client, customer, account, newsletter, campaign
):
    add_contacts(account, newsletter, 1)
    # It names the link, so Tidings adds no footer of its own, but no contact sees it.
    hiding = Layout.objects.create(
        account=account,
        name="hiding",
        html='{{ content }}{% if contact.email == "nobody" %}'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endif %}',
    )
    Campaign.objects.filter(pk=campaign.pk).update(layout=hiding)
    campaign.refresh_from_db()

    found = check(campaign, "unsubscribe")
    assert found.state == checklist.BLOCKING
    assert "the HTML" in found.detail and "the headers" not in found.detail
    refused_everywhere(client, customer, campaign, "No working unsubscribe link")


def test_a_layout_that_prints_the_unsubscribe_link_passes(account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    shown = Layout.objects.create(
        account=account,
        name="shown",
        html='{{ content }}<p><a href="{{ unsubscribe_url }}">Leave</a> {{ unsubscribe_url }}</p>',
    )
    Campaign.objects.filter(pk=campaign.pk).update(layout=shown)
    campaign.refresh_from_db()
    assert check(campaign, "unsubscribe").state == checklist.PASSED


def test_no_postal_address_cannot_be_sent(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    SendingSettings.objects.filter(account=account).update(postal_address="")
    found = check(campaign, "postal_address")
    assert found.state == checklist.BLOCKING and found.fix_url == "/sending/#postal"
    refused_everywhere(client, customer, campaign, "postal address is missing")


def test_scheduling_follows_the_same_rules(account, newsletter, campaign):
    later = timezone.now() + timedelta(days=1)
    with pytest.raises(lifecycle.SendingError, match="Nobody would receive it"):
        lifecycle.schedule_campaign(campaign, later)
    add_contacts(account, newsletter, 1)
    lifecycle.schedule_campaign(campaign, later)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED


# Warnings: shown, never blocking ----------------------------------------------------------


def test_images_without_alt_text_are_a_warning(account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    campaign.body = (
        '<p>Hello</p><img src="https://news.example.org/a.png" alt="Our bakery">'
        '<img src="https://news.example.org/b.png">'
    )
    campaign.track_opens = True  # the open pixel is no image to describe
    campaign.save()
    found = check(campaign, "images")
    assert found.state == checklist.WARNING
    assert "1 image of 2 has no alt text" in found.detail and "b.png" in found.detail
    assert checklist.checklist(campaign).blocking == []

    campaign.body = '<p>Hello</p><img src="https://news.example.org/b.png" alt="Bread">'
    campaign.save()
    assert check(campaign, "images").state == checklist.PASSED


def test_a_message_over_100_kb_is_a_warning(account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    campaign.body = "<p>" + "Bread and butter. " * 7000 + "</p>"
    campaign.save()
    found = check(campaign, "size")
    assert found.state == checklist.WARNING and "Gmail clips" in found.detail


def test_the_sender_is_the_from_it_really_goes_out_with(settings, account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    found = check(campaign, "sender")
    # Not proven: the operator's address, the customer's for replies (senders.py).
    assert found.state == checklist.WARNING
    assert "no-reply@" in found.detail and "news@news.example.org" in found.detail
    assert found.fix_url == "/sending/#domains"

    proven(services.add_sending_domain(account, "news.example.org"))
    found = check(campaign, "sender")
    assert found.state == checklist.PASSED and "news@news.example.org" in found.detail


# Confirmation of a large send ---------------------------------------------------------------


def test_a_large_send_needs_its_number_confirmed(
    client, customer, settings, account, newsletter, campaign
):
    settings.SENDING = {**settings.SENDING, "confirm_over": 2}
    add_contacts(account, newsletter, 3)
    assert checklist.checklist(campaign).needs_confirmation

    for confirmed in (None, 2, 4):
        with pytest.raises(lifecycle.SendingError, match="goes to 3 contacts"):
            lifecycle.start_campaign(campaign, confirmed_recipients=confirmed)
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert 'name="confirm_recipients"' in page and "Type 3 to confirm" in page
    refused = client.post(
        f"/campaigns/{campaign.uuid}/send/",
        {"action": "send", "confirm_recipients": "three"},
        follow=True,
    )
    assert "goes to 3 contacts" in refused.content.decode()
    key = apikeys.create_api_key(account, name="rails", by=customer)[1]
    answer = api(client, key, f"/campaigns/{campaign.uuid}/send", confirm_recipients=30)
    assert answer.status_code == 409 and "goes to 3 contacts" in answer.json()["detail"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT

    answer = api(client, key, f"/campaigns/{campaign.uuid}/send", confirm_recipients=3)
    assert answer.status_code == 200 and answer.json()["status"] in ("sending", "sent")


def test_the_page_takes_the_number_as_people_type_it(
    client, customer, settings, account, newsletter, campaign
):
    settings.SENDING = {**settings.SENDING, "confirm_over": 2}
    add_contacts(account, newsletter, 3)
    client.force_login(customer)
    response = client.post(
        f"/campaigns/{campaign.uuid}/send/", {"action": "send", "confirm_recipients": " 3 "}
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status in ("sending", "sent")


def test_a_small_send_needs_no_confirmation(account, newsletter, campaign):
    add_contacts(account, newsletter, 3)
    assert not checklist.checklist(campaign).needs_confirmation
    lifecycle.start_campaign(campaign)
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT


def test_a_confirmed_schedule_starts_without_asking_again(settings, account, newsletter, campaign):
    settings.SENDING = {**settings.SENDING, "confirm_over": 2}
    add_contacts(account, newsletter, 3)
    later = timezone.now() + timedelta(minutes=5)
    with pytest.raises(lifecycle.SendingError, match="goes to 3 contacts"):
        lifecycle.schedule_campaign(campaign, later)
    lifecycle.schedule_campaign(campaign, later, confirmed_recipients=3)

    assert lifecycle.start_due_campaigns(now=later) == [campaign.pk]


# The page ----------------------------------------------------------------------------------


def test_the_page_shows_each_check_and_disables_send_while_blocked(
    client, customer, account, newsletter, campaign
):
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert 'id="check-recipients" data-state="blocking"' in page
    assert 'value="send" disabled' in page and 'id="send-blocked"' in page
    for key in ("subject", "sender", "postal_address", "unsubscribe", "placeholder", "images"):
        assert f'id="check-{key}" data-state="passed"' in page or key == "sender"
    assert 'id="check-spam" data-state="pending"' in page

    add_contacts(account, newsletter, 1)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert 'value="send" disabled' not in page and 'id="send-blocked"' not in page


# Test sends ------------------------------------------------------------------------------


def test_a_test_send_says_test_in_its_subject(settings, customer, account, campaign):
    settings.EMAIL_DELIVERY = "outbox"
    proofs.send_test(campaign, to=["me@example.org"], by=customer)
    (sent,) = OutboxMessage.objects.all()
    assert sent.subject == "[Test] News for Alex"


# SpamAssassin, in a worker job ------------------------------------------------------------


def test_without_spamassassin_the_score_is_not_available(
    monkeypatch, client, customer, account, newsletter, campaign
):
    cache.clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    add_contacts(account, newsletter, 1)
    client.force_login(customer)
    # The tests run jobs eagerly: asking queues the job, which has run by the answer.
    answer = client.get(f"/campaigns/{campaign.uuid}/send/spam.json").json()
    assert answer["state"] == "unavailable" and "not installed" in answer["detail"]
    assert answer["state_label"] == "Not available"
    assert checklist.checklist(campaign).blocking == []


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("spamassassin"), reason="Debian's spamassassin is missing")
def test_spamassassin_scores_the_message_in_a_job(client, customer, account, newsletter, campaign):
    cache.clear()
    add_contacts(account, newsletter, 1)
    assert check(campaign, "spam").state == checklist.PENDING
    client.force_login(customer)
    answer = client.get(f"/campaigns/{campaign.uuid}/send/spam.json").json()
    assert answer["state"] in ("passed", "warning") and "points" in answer["detail"]
    # Kept for this content: the page shows it without scoring again.
    assert check(campaign, "spam").detail == answer["detail"]
    # A change of content is scored anew.
    campaign.subject = "Something else"
    campaign.save()
    assert check(campaign, "spam").state == checklist.PENDING


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("spamassassin"), reason="Debian's spamassassin is missing")
def test_a_spammy_message_gets_a_warning(account, newsletter, campaign):
    cache.clear()
    add_contacts(account, newsletter, 1)
    campaign.subject = "FREE!!! CASH NOW!!! 100% GUARANTEED"
    campaign.body = (
        "<p>CLICK HERE!!! BUY NOW!!! FREE MONEY!!! Viagra cheap, no prescription. "
        "Act now, limited time, 100% free, risk free, you are a WINNER!!!</p>"
        '<p><a href="http://192.0.2.1/win">CLICK HERE</a></p>'
    )
    campaign.save()
    result = checklist.score_spam(campaign.pk)
    assert result is not None and result["score"] >= checklist.SPAM_WARNING
    assert check(campaign, "spam").state == checklist.WARNING
