"""Writing campaigns and layouts: templates checked at save time with their line, other
accounts' lists refused, sent campaigns frozen, drafts duplicated and deleted."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import campaign_status
from tidings.audience import services as audience
from tidings.audience.models import MailingList, Segment
from tidings.campaigns import rendering, services
from tidings.campaigns.models import Campaign, Layout
from tidings.campaigns.services import CampaignError, InvalidTemplates

pytestmark = pytest.mark.django_db


def values(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "November news",
        "subject": "Hello {{ contact.first_name | default('friend') }}",
        "from_name": "Acme",
        "from_email": "news@acme.example",
        "content_format": Campaign.Format.MARKDOWN,
        "body": "Hi {{ contact.first_name }}",
    }
    return base | changes


def test_a_campaign_is_created_with_its_own_lists_and_segments(customer):
    account = customer.account
    news = MailingList.objects.create(account=account, name="News")
    vips = Segment.objects.create(account=account, name="VIPs", rules={})
    campaign = services.create_campaign(
        account, by=customer, lists=[news], segments=[vips], **values()
    )
    assert campaign.status == Campaign.Status.DRAFT
    assert list(campaign.lists.all()) == [news] and list(campaign.segments.all()) == [vips]
    assert not campaign.track_opens and not campaign.track_clicks


def test_another_accounts_list_segment_or_layout_is_refused(customer, other_customer):
    theirs = other_customer.account
    their_list = MailingList.objects.create(account=theirs, name="Theirs")
    their_segment = Segment.objects.create(account=theirs, name="Theirs", rules={})
    their_layout = Layout.objects.create(account=theirs, name="Theirs", html="{{ content }}")
    for extra in ({"lists": [their_list]}, {"segments": [their_segment]}):
        with pytest.raises(CampaignError, match="does not belong"):
            services.create_campaign(customer.account, by=customer, **extra, **values())  # type: ignore[arg-type]
    with pytest.raises(CampaignError, match="does not belong"):
        services.create_campaign(customer.account, by=customer, **values(layout=their_layout))
    assert not Campaign.objects.filter(account=customer.account).exists()


@pytest.mark.parametrize(
    ("field", "source", "expected"),
    [
        ("body", "Fine\n\nStill fine\n\n{% if contact.name %}no end", "line 5"),
        ("body", "a\n{{ contact.name | shout }}", "line 2: No filter named 'shout'"),
        ("body", "a\nb\n{{ contcat.name }}", "line 3: 'contcat' is undefined"),
        ("body", "a\n{{ contact.first_nam }}", "line 2: there is no 'first_nam' here"),
        ("body", "a\n\n{{ 10 / 0 }}", "line 3: division by zero"),
        ("body", "x\n{{ ''.__class__ }}", "line 2: the template tries to reach"),
        ("subject", "Hi {{ contact.first_name", "line 1"),
        ("preheader", "{{ range(10**9)|list }}", "range() gives at most"),
    ],
)
def test_a_broken_template_is_refused_with_its_line_and_nothing_is_saved(
    customer, field, source, expected
):
    with pytest.raises(InvalidTemplates) as refused:
        services.create_campaign(customer.account, by=customer, **values(**{field: source}))
    assert expected in refused.value.problems[field]
    assert not Campaign.objects.exists()


def test_a_template_failing_for_a_real_contact_is_refused_naming_the_contact(customer):
    audience.add_contact(customer.account, "old@example.org", attributes={"age": "forty"})
    with pytest.raises(InvalidTemplates) as refused:
        services.create_campaign(
            customer.account,
            by=customer,
            **values(body="Next year you are\n{{ contact.attributes.age | default(30) + 1 }}"),
        )
    assert "line 2" in refused.value.problems["body"]
    assert "(for old@example.org)" in refused.value.problems["body"]


def test_a_missing_attribute_is_not_an_error(customer):
    campaign = services.create_campaign(
        customer.account, by=customer, **values(body="{{ contact.attributes.city }}")
    )
    assert campaign.pk


def test_rich_text_is_sanitised_when_saved(customer):
    campaign = services.create_campaign(
        customer.account,
        by=customer,
        **values(
            content_format=Campaign.Format.RICHTEXT,
            body='<p onmouseover="x()">Hi {{ contact.first_name | default("you") }}</p>'
            "<script>x</script>",
        ),
    )
    assert campaign.body == '<p>Hi {{ contact.first_name | default("you") }}</p>'


def test_a_layout_must_place_the_content_and_compile(customer):
    with pytest.raises(InvalidTemplates, match="must contain"):
        services.create_layout(customer.account, name="x", html="<p>no slot</p>", by=customer)
    with pytest.raises(InvalidTemplates, match="line 2"):
        services.create_layout(
            customer.account, name="x", html="{{ content }}\n{% for %}", by=customer
        )
    assert not Layout.objects.exists()
    layout = services.create_layout(
        customer.account, name="Mine", html="<div>{{ content }}</div>", by=customer
    )
    assert layout.account == customer.account


def test_a_campaign_with_a_layout_checks_the_layout_too(customer):
    layout = Layout.objects.create(
        account=customer.account, name="Broken", html="{{ content }}{{ nothing.here }}"
    )
    with pytest.raises(InvalidTemplates) as refused:
        services.create_campaign(customer.account, by=customer, **values(layout=layout))
    assert "'nothing' is undefined" in refused.value.problems["layout"]


@pytest.mark.parametrize("status", ["sending", "paused", "sent", "cancelled"])
def test_a_campaign_that_started_cannot_change(customer, status):
    campaign = services.create_campaign(customer.account, by=customer, **values())
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(status))
    with pytest.raises(CampaignError, match="can no longer be changed"):
        services.update_campaign(campaign, by=customer, **values(subject="Changed"))
    campaign.refresh_from_db()
    assert campaign.subject == values()["subject"]


def test_a_scheduled_campaign_can_still_change(customer):
    campaign = services.create_campaign(customer.account, by=customer, **values())
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled")
    services.update_campaign(campaign, by=customer, **values(subject="Changed"))
    campaign.refresh_from_db()
    assert campaign.subject == "Changed" and campaign.status == "scheduled"


def test_a_scheduled_campaign_keeps_a_send_time(customer):
    campaign = services.create_campaign(customer.account, by=customer, **values())
    Campaign.objects.filter(pk=campaign.pk).update(
        status="scheduled", scheduled_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    with pytest.raises(CampaignError, match="needs its send time"):
        services.update_campaign(campaign, by=customer, **values(scheduled_at=None))
    later = dt.datetime(2030, 2, 1, 9, tzinfo=dt.UTC)
    services.update_campaign(campaign, by=customer, **values(scheduled_at=later))
    campaign.refresh_from_db()
    assert campaign.scheduled_at == later and campaign.status == "scheduled"


def test_duplicate_is_an_unscheduled_draft_with_the_same_content(customer):
    account = customer.account
    news = MailingList.objects.create(account=account, name="News")
    original = services.create_campaign(
        account, by=customer, lists=[news], **values(track_opens=True, archived=True)
    )
    Campaign.objects.filter(pk=original.pk).update(**campaign_status("sent"))
    copy = services.duplicate_campaign(original, by=customer)
    assert copy.pk != original.pk and copy.uuid != original.uuid
    assert copy.name == "Copy of November news" and copy.status == "draft"
    assert copy.body == original.body and copy.subject == original.subject
    assert copy.track_opens and not copy.archived and copy.scheduled_at is None
    assert list(copy.lists.all()) == [news]


def test_only_drafts_are_deleted(customer):
    draft = services.create_campaign(customer.account, by=customer, **values())
    sent = services.create_campaign(customer.account, by=customer, **values(name="Sent"))
    Campaign.objects.filter(pk=sent.pk).update(**campaign_status("sent"))
    services.delete_campaign(draft, by=customer)
    with pytest.raises(CampaignError, match="Only drafts"):
        services.delete_campaign(sent, by=customer)
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Sent"]


def test_a_layout_used_beyond_drafts_is_kept_and_drafts_fall_back(customer):
    layout = services.create_layout(customer.account, name="L", html="{{ content }}", by=customer)
    draft = services.create_campaign(customer.account, by=customer, **values(layout=layout))
    sent = services.create_campaign(customer.account, by=customer, **values(layout=layout))
    Campaign.objects.filter(pk=sent.pk).update(**campaign_status("sent"))
    with pytest.raises(CampaignError, match="1 campaign beyond drafts"):
        services.delete_layout(layout, by=customer)
    Campaign.objects.filter(pk=sent.pk).delete()
    services.delete_layout(layout, by=customer)
    draft.refresh_from_db()
    assert draft.layout is None
    assert "Unsubscribe" in rendering.render(draft, rendering.sample_contact()).html


def test_a_layout_in_use_by_a_sending_campaign_cannot_change(customer):
    layout = services.create_layout(customer.account, name="L", html="{{ content }}", by=customer)
    campaign = services.create_campaign(customer.account, by=customer, **values(layout=layout))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    with pytest.raises(CampaignError, match="being sent"):
        services.update_layout(layout, name="L", html="<b>{{ content }}</b>", by=customer)
    services.update_layout(layout, name="Renamed", html="{{ content }}", by=customer)
    layout.refresh_from_db()
    assert layout.name == "Renamed" and layout.html == "{{ content }}"


def test_the_default_layout_can_be_copied_and_edited(customer):
    copy = services.copy_default_layout(customer.account, by=customer)
    assert copy.html == rendering.default_layout_html()
    services.update_layout(copy, name="Ours", html=copy.html.replace("600px", "640px"), by=customer)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "at least one"),
        ("a@x.example b@x.example c@x.example d@x.example e@x.example f@x.example", "at most 5"),
        ("ok@example.org, not-an-address", "not a valid email address"),
    ],
)
def test_test_recipients_are_validated(raw, error):
    with pytest.raises(CampaignError, match=error):
        services.parse_test_recipients(raw)


def test_test_recipients_are_normalised_and_deduplicated():
    assert services.parse_test_recipients("A@Example.ORG; a@example.org\nb@example.org") == [
        "a@example.org",
        "b@example.org",
    ]
