"""The campaign editor pages: create, edit, preview, test, duplicate, delete; layouts;
tenants never meet; a campaign that started is read-only."""

from __future__ import annotations

import datetime as dt
import email.policy
from email.message import EmailMessage

import pytest
import time_machine
from django.urls import reverse

from tests.factories import campaign_status
from tidings.audience import services as audience
from tidings.audience.models import MailingList, Segment
from tidings.campaigns import services
from tidings.campaigns.models import Campaign, Layout
from tidings.campaigns.views import PREVIEW_CSP

pytestmark = pytest.mark.django_db


def form_data(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "November news",
        "subject": 'Hello {{ contact.first_name | default("friend") }}',
        "preheader": "What happened in {{ contact.attributes.city | default('town') }}",
        "from_name": "Acme Bakery",
        "from_email": "news@acme.example",
        "reply_to": "",
        "content_format": "markdown",
        "body": "# Hello {{ contact.first_name }}\n\nFresh *rye* bread.",
        "layout": "",
        "schedule_date": "",
        "schedule_time": "",
        "schedule_timezone": "UTC",
    }
    return base | changes


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def make_campaign(customer, **changes: object) -> Campaign:  # type: ignore[no-untyped-def]
    data = {
        "name": "Draft",
        "subject": "Hello {{ contact.first_name | default('friend') }}",
        "from_name": "Acme",
        "from_email": "news@acme.example",
        "content_format": "markdown",
        "body": "# Hi {{ contact.first_name | default('there') }}\n\nNews.",
    } | changes
    return services.create_campaign(customer.account, by=customer, **data)


def test_pages_need_a_login(client):
    response = client.get(reverse("campaigns:list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_list_shows_only_the_accounts_campaigns(logged_in, customer, other_customer):
    make_campaign(customer, name="Ours")
    make_campaign(other_customer, name="Theirs")
    page = logged_in.get(reverse("campaigns:list")).content.decode()
    assert "Ours" in page and "Theirs" not in page and "draft" in page


def test_create_a_campaign_with_lists_segments_tracking_and_schedule(logged_in, customer):
    account = customer.account
    news = MailingList.objects.create(account=account, name="News")
    vips = Segment.objects.create(account=account, name="VIPs", rules={})
    with time_machine.travel(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)):
        response = logged_in.post(
            reverse("campaigns:new"),
            form_data(
                lists=[news.pk],
                segments=[vips.pk],
                track_clicks="on",
                archived="on",
                schedule_date="2026-12-01",
                schedule_time="09:30",
                schedule_timezone="Europe/Brussels",
            ),
        )
    campaign = Campaign.objects.get(account=account)
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:edit", kwargs={"uuid": campaign.uuid})
    assert campaign.track_clicks and not campaign.track_opens and campaign.archived
    assert list(campaign.lists.all()) == [news] and list(campaign.segments.all()) == [vips]
    # 09:30 in Brussels in winter is 08:30 UTC; the zone is kept to show it again.
    assert campaign.scheduled_at == dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    assert campaign.schedule_timezone == "Europe/Brussels" and campaign.status == "draft"
    logged_in.force_login(customer)  # back from 2026-11-20: the session idled out
    page = logged_in.get(response["Location"]).content.decode()
    assert 'value="2026-12-01"' in page and 'value="09:30"' in page
    listed = logged_in.get(reverse("campaigns:list")).content.decode()
    assert "1 Dec 2026, 09:30" in listed and "Europe/Brussels" in listed


def test_tracking_is_off_by_default_on_a_new_campaign(logged_in):
    page = logged_in.get(reverse("campaigns:new")).content.decode()
    assert 'name="track_opens"' in page and 'name="track_opens" checked' not in page
    assert 'name="track_clicks" checked' not in page
    assert "{% block" not in page  # the send block renders (empty for a new campaign)


@pytest.mark.parametrize(
    ("day", "time", "zone", "error"),
    [
        ("2027-03-28", "02:30", "Europe/Brussels", "does not exist"),
        ("2020-01-01", "10:00", "UTC", "in the future"),
        ("2027-01-01", "", "UTC", "both date and time"),
        ("2027-01-01", "10:00", "Mars/Olympus", "Select a valid choice"),
    ],
)
def test_a_bad_planned_time_is_refused(logged_in, day, time, zone, error):
    response = logged_in.post(
        reverse("campaigns:new"),
        form_data(schedule_date=day, schedule_time=time, schedule_timezone=zone),
    )
    assert response.status_code == 200 and error in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_template_error_is_shown_on_the_field_with_its_line(logged_in):
    response = logged_in.post(
        reverse("campaigns:new"), form_data(body="Hello\n\nthere\n{{ contact.name | shout }}")
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert "The campaign was not saved" in page
    assert "line 4: No filter named &#x27;shout&#x27;." in page


def test_another_accounts_list_segment_or_layout_is_not_a_choice(logged_in, other_customer):
    theirs = other_customer.account
    their_list = MailingList.objects.create(account=theirs, name="Their list")
    their_segment = Segment.objects.create(account=theirs, name="Their segment", rules={})
    their_layout = Layout.objects.create(account=theirs, name="Their layout", html="{{ content }}")
    for extra in (
        {"lists": [their_list.pk]},
        {"segments": [their_segment.pk]},
        {"layout": their_layout.pk},
    ):
        response = logged_in.post(reverse("campaigns:new"), form_data(**extra))
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    page = logged_in.get(reverse("campaigns:new")).content.decode()
    assert "Their list" not in page and "Their segment" not in page and "Their layout" not in page
    assert not Campaign.objects.exists()


def test_edit_a_draft(logged_in, customer):
    campaign = make_campaign(customer)
    url = reverse("campaigns:edit", kwargs={"uuid": campaign.uuid})
    assert "Edit “Draft”" in logged_in.get(url).content.decode()
    response = logged_in.post(
        url, form_data(name="Renamed", content_format="html", body="<p>x</p>")
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Renamed" and campaign.content_format == "html"


def test_save_and_preview_goes_to_the_preview(logged_in, customer):
    campaign = make_campaign(customer)
    url = reverse("campaigns:edit", kwargs={"uuid": campaign.uuid})
    response = logged_in.post(url, form_data() | {"preview": ""})
    assert response["Location"] == reverse("campaigns:preview", kwargs={"uuid": campaign.uuid})


@pytest.mark.parametrize("status", ["sending", "sent"])
def test_a_campaign_that_started_is_read_only(logged_in, customer, status):
    campaign = make_campaign(customer, name="Going out")
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(status))
    url = reverse("campaigns:edit", kwargs={"uuid": campaign.uuid})
    page = logged_in.get(url).content.decode()
    assert "can no longer be changed" in page and "<textarea" not in page
    response = logged_in.post(url, form_data(name="Changed"), follow=True)
    assert "can no longer change" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Going out"


def test_preview_shows_the_personalised_message_in_a_sandboxed_frame(logged_in, customer):
    campaign = make_campaign(customer, preheader="Teaser")
    page = logged_in.get(reverse("campaigns:preview", kwargs={"uuid": campaign.uuid}))
    text = page.content.decode()
    assert "Hello Alex" in text  # the made-up sample contact
    assert 'sandbox=""' in text and "Hi Alex" in text  # the text part, shown as text
    assert "Content-Security-Policy" in page.headers
    frame = logged_in.get(reverse("campaigns:preview_html", kwargs={"uuid": campaign.uuid}))
    assert frame["Content-Security-Policy"] == PREVIEW_CSP
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert "<h1 style=" in frame.content.decode() and "Hi Alex" in frame.content.decode()


def test_preview_as_a_chosen_contact(logged_in, customer):
    campaign = make_campaign(customer)
    bob = audience.add_contact(customer.account, "bob@example.org", name="Bob Stone")
    url = reverse("campaigns:preview", kwargs={"uuid": campaign.uuid})
    response = logged_in.post(url, {"email": "BOB@example.org"})
    assert response["Location"] == f"{url}?contact={bob.uuid}"
    page = logged_in.get(response["Location"]).content.decode()
    assert "Hello Bob" in page and "Hi Bob" in page
    assert f"preview.html?contact={bob.uuid}" in page
    missing = logged_in.post(url, {"email": "nobody@example.org"}, follow=True)
    assert "No contact of yours has that address" in missing.content.decode()


def test_preview_never_shows_another_accounts_contact(logged_in, customer, other_customer):
    campaign = make_campaign(customer)
    carol = audience.add_contact(other_customer.account, "carol@example.net", name="Carol")
    url = reverse("campaigns:preview", kwargs={"uuid": campaign.uuid})
    assert "Carol" not in logged_in.get(f"{url}?contact={carol.uuid}").content.decode()
    frame = reverse("campaigns:preview_html", kwargs={"uuid": campaign.uuid})
    assert "Carol" not in logged_in.get(f"{frame}?contact={carol.uuid}").content.decode()
    chosen = logged_in.post(url, {"email": "carol@example.net"}, follow=True)
    assert "No contact of yours" in chosen.content.decode()


def _parts(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_content()  # type: ignore[attr-defined]
        for part in message.iter_parts()
    }


def test_send_a_test_through_the_real_smtp_server(client, customer, smtp_mail):
    client.force_login(customer)
    campaign = make_campaign(customer, reply_to="replies@acme.example")
    response = client.post(
        reverse("campaigns:test", kwargs={"uuid": campaign.uuid}),
        {"recipients": "me@example.org, Colleague@Example.org"},
    )
    assert response.status_code == 302
    assert sorted(m["X-Envelope-To"] for m in smtp_mail.messages) == [
        "colleague@example.org",
        "me@example.org",
    ]
    for message in smtp_mail.messages:
        assert message.get_content_type() == "multipart/alternative"
        assert message["Subject"] == "[Test] Hello Alex"
        # acme.example is not proven the customer's (sending.domains): the operator's
        # address, the customer's name, replies to the customer (docs/sending.md).
        assert message["From"] == "Acme <no-reply@example.com>"
        assert message["Reply-To"] == "replies@acme.example"
        assert message["To"] == message["X-Envelope-To"]  # each address alone
        parts = _parts(message)
        assert set(parts) == {"text/plain", "text/html"}
        assert "Hi Alex" in parts["text/plain"] and "<" not in parts["text/plain"]
        assert '<h1 style="font-size: 26px;' in parts["text/html"]  # CSS inlined
    raw = smtp_mail.messages[0].as_bytes(policy=email.policy.SMTP)
    assert b"MIME-Version: 1.0" in raw


def test_a_test_is_personalised_for_the_chosen_contact(client, customer, smtp_mail):
    client.force_login(customer)
    campaign = make_campaign(customer)
    bob = audience.add_contact(customer.account, "bob@example.org", name="Bob Stone")
    client.post(
        reverse("campaigns:test", kwargs={"uuid": campaign.uuid}),
        {"recipients": "me@example.org", "contact": str(bob.uuid)},
    )
    (message,) = smtp_mail.messages
    assert message["Subject"] == "[Test] Hello Bob" and message["To"] == "me@example.org"


@pytest.mark.parametrize(
    ("recipients", "error"),
    [
        ("a@x.org b@x.org c@x.org d@x.org e@x.org f@x.org", "at most 5"),
        ("me@example.org, nonsense", "not a valid email address"),
    ],
)
def test_a_bad_test_send_sends_nothing(client, customer, smtp_mail, recipients, error):
    client.force_login(customer)
    campaign = make_campaign(customer)
    response = client.post(
        reverse("campaigns:test", kwargs={"uuid": campaign.uuid}), {"recipients": recipients}
    )
    assert response.status_code == 400 and error in response.content.decode()
    assert smtp_mail.messages == []


def test_test_sends_are_rate_limited(client, customer, smtp_mail, settings):
    client.force_login(customer)
    campaign = make_campaign(customer)
    url = reverse("campaigns:test", kwargs={"uuid": campaign.uuid})
    five = ", ".join(f"me{i}@example.org" for i in range(5))
    for _ in range(services.TEST_MESSAGES_PER_HOUR // 5):
        assert client.post(url, {"recipients": five}).status_code == 302
    refused = client.post(url, {"recipients": "one@example.org"})
    assert refused.status_code == 400 and "try again later" in refused.content.decode()
    assert len(smtp_mail.messages) == services.TEST_MESSAGES_PER_HOUR


def test_duplicate_and_delete(logged_in, customer):
    campaign = make_campaign(customer, name="Original")
    response = logged_in.post(reverse("campaigns:duplicate", kwargs={"uuid": campaign.uuid}))
    copy = Campaign.objects.get(name="Copy of Original")
    assert response["Location"] == reverse("campaigns:edit", kwargs={"uuid": copy.uuid})
    delete = reverse("campaigns:delete", kwargs={"uuid": copy.uuid})
    assert "cannot be undone" in logged_in.get(delete).content.decode()
    assert logged_in.post(delete)["Location"] == reverse("campaigns:list")
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Original"]


def test_a_sent_campaign_is_not_deleted(logged_in, customer):
    campaign = make_campaign(customer)
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status("sent"))
    response = logged_in.post(
        reverse("campaigns:delete", kwargs={"uuid": campaign.uuid}), follow=True
    )
    assert "Only drafts can be deleted" in response.content.decode()
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_another_accounts_campaign_is_a_404_and_stays_unchanged(
    logged_in, customer, other_customer, smtp_server, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    theirs = make_campaign(other_customer, name="Their secret campaign")
    before = Campaign.objects.filter(pk=theirs.pk).values().get()
    uuid = {"uuid": theirs.uuid}
    for name in ("edit", "preview", "preview_html", "delete"):
        assert logged_in.get(reverse(f"campaigns:{name}", kwargs=uuid)).status_code == 404
    for name, data in (
        ("edit", form_data(name="Hijacked")),
        ("preview", {"email": "x@example.org"}),
        ("test", {"recipients": "me@example.org"}),
        ("duplicate", {}),
        ("delete", {}),
    ):
        assert logged_in.post(reverse(f"campaigns:{name}", kwargs=uuid), data).status_code == 404
    assert Campaign.objects.filter(pk=theirs.pk).values().get() == before
    assert Campaign.objects.count() == 1 and smtp_server.messages == []


def test_layout_pages(logged_in, customer, other_customer):
    assert "Tidings default layout" in logged_in.get(reverse("campaigns:layouts")).content.decode()
    default = logged_in.get(reverse("campaigns:layout_default"))
    assert "Make an editable copy" in default.content.decode()
    assert (
        logged_in.get(reverse("campaigns:layout_default_preview_html"))["Content-Security-Policy"]
        == PREVIEW_CSP
    )
    response = logged_in.post(reverse("campaigns:layout_copy_default"))
    layout = Layout.objects.get(account=customer.account)
    assert response["Location"] == reverse("campaigns:layout_edit", kwargs={"pk": layout.pk})
    edit = reverse("campaigns:layout_edit", kwargs={"pk": layout.pk})
    refused = logged_in.post(edit, {"name": "Mine", "html": "<p>where is the content?</p>"})
    assert "must contain {{ content }}" in refused.content.decode()
    saved = logged_in.post(edit, {"name": "Mine", "html": "<main>{{ content }}</main>"})
    assert saved.status_code == 302
    layout.refresh_from_db()
    assert layout.name == "Mine" and layout.html == "<main>{{ content }}</main>"
    frame = logged_in.get(reverse("campaigns:layout_preview_html", kwargs={"pk": layout.pk}))
    assert "<main><h1>A heading</h1>" in frame.content.decode()
    theirs = Layout.objects.create(account=other_customer.account, name="T", html="{{ content }}")
    for name in ("layout_edit", "layout_preview_html"):
        assert (
            logged_in.get(reverse(f"campaigns:{name}", kwargs={"pk": theirs.pk})).status_code == 404
        )
    assert (
        logged_in.post(reverse("campaigns:layout_delete", kwargs={"pk": theirs.pk})).status_code
        == 404
    )
    assert Layout.objects.filter(pk=theirs.pk).exists()
    assert (
        logged_in.post(reverse("campaigns:layout_delete", kwargs={"pk": layout.pk})).status_code
        == 302
    )
    assert not Layout.objects.filter(pk=layout.pk).exists()


def test_new_layout_starts_from_the_default(logged_in):
    page = logged_in.get(reverse("campaigns:layout_new")).content.decode()
    assert "{{ unsubscribe_url }}" in page
    response = logged_in.post(
        reverse("campaigns:layout_new"), {"name": "Plain", "html": "<div>{{ content }}</div>"}
    )
    assert response.status_code == 302 and Layout.objects.get().name == "Plain"
