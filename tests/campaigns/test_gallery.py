"""The template gallery: eight designed templates that render and start a campaign, the
customer's own saved templates, and another account's never reachable."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.urls import reverse

from tidings.campaigns import gallery, services
from tidings.campaigns.models import Campaign, SavedTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def make_campaign(customer, **changes: object) -> Campaign:  # type: ignore[no-untyped-def]
    data = {
        "name": "Spring news",
        "subject": "Hello {{ contact.first_name | default('friend') }}",
        "preheader": "Fresh bread",
        "from_name": "Acme",
        "from_email": "news@acme.example",
        "content_format": "html",
        "body": "<h1>Hi {{ contact.first_name | default('there') }}</h1><p>Rye.</p>",
    } | changes
    return services.create_campaign(customer.account, by=customer, **data)


def test_the_gallery_has_the_eight_kinds_the_issue_asks_for():
    assert {t.slug for t in gallery.BUILT_IN} >= {
        "newsletter", "announcement", "product-launch", "event-invitation", "welcome",
        "re-engagement", "digest", "plain", "visual-newsletter",
    }  # fmt: skip


@pytest.mark.parametrize("template", gallery.BUILT_IN, ids=lambda t: t.slug)
def test_every_gallery_template_renders_personalised_and_passes_the_save_checks(template, customer):
    rendered = gallery.render_template(template)
    assert "Alex" in rendered.subject + rendered.html  # the made-up contact's first name
    assert "{{" not in rendered.html and "{%" not in rendered.html
    assert rendered.text.strip()
    # The same checks a save runs: a campaign made from it is accepted as it is.
    campaign = make_campaign(
        customer,
        subject=template.subject,
        preheader=template.preheader,
        content_format=template.content_format,
        body=template.body,
        design=template.design,
    )
    assert campaign.body == template.body


def test_the_gallery_page_lists_every_template_with_a_sandboxed_preview(logged_in):
    response = logged_in.get(reverse("campaigns:gallery"))
    assert response.status_code == 200
    page = response.content.decode()
    for template in gallery.BUILT_IN:
        assert str(template.name) in page
        assert f"?template={template.slug}" in page
        preview = reverse("campaigns:gallery_preview_html", args=[template.slug])
        assert f'sandbox="" src="{preview}"' in page
        frame = logged_in.get(preview)
        assert frame.status_code == 200
        assert frame["Content-Security-Policy"].startswith("sandbox;")


def test_choosing_a_template_fills_the_new_campaign_form_with_it(logged_in):
    template = gallery.built_in("event-invitation")
    assert template is not None
    response = logged_in.get(reverse("campaigns:new") + "?template=event-invitation")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["body"] == template.body
    assert form.initial["content_format"] == "visual"
    assert form.initial["design"] == template.design
    assert form.initial["subject"] == template.subject


def test_every_built_in_template_is_a_visual_editor_document_with_its_footer():
    """Each opens in the visual editor (issue 14): MJML that passes the strict check,
    with the unsubscribe and preferences links and the postal address in its footer."""
    assert len(gallery.BUILT_IN) >= 8
    for template in gallery.BUILT_IN:
        assert template.content_format == "visual", template.slug
        assert template.design["mjml"].startswith("<mjml>"), template.slug
        body = template.body  # compiled through mjml.to_html: strict, or MjmlError
        for tag in ("{{ unsubscribe_url }}", "{{ preferences_url }}", "campaign.postal_address"):
            assert tag in body, (template.slug, tag)


def test_an_unknown_template_is_refused_clearly_and_creates_nothing(logged_in, customer):
    response = logged_in.get(reverse("campaigns:new") + "?template=no-such", follow=True)
    assert response.redirect_chain[-1][0] == reverse("campaigns:gallery")
    assert "There is no such template" in response.content.decode()
    assert (
        logged_in.get(reverse("campaigns:gallery_preview_html", args=["no-such"])).status_code
        == 404
    )
    assert not Campaign.objects.filter(account=customer.account).exists()


def test_save_as_template_keeps_the_content_and_starts_a_new_campaign_with_it(logged_in, customer):
    campaign = make_campaign(customer)
    response = logged_in.post(
        reverse("campaigns:save_template", args=[campaign.uuid]),
        {"template_name": "  Our spring look "},
        follow=True,
    )
    assert "Saved “Our spring look” as a template" in response.content.decode()
    saved = SavedTemplate.objects.get(account=customer.account)
    assert (saved.name, saved.body, saved.subject, saved.content_format) == (
        "Our spring look", campaign.body, campaign.subject, "html",
    )  # fmt: skip
    page = logged_in.get(reverse("campaigns:gallery")).content.decode()
    assert "Our spring look" in page
    preview = logged_in.get(reverse("campaigns:saved_preview_html", args=[saved.pk]))
    assert "Hi Alex" in preview.content.decode()
    new = logged_in.get(reverse("campaigns:new") + f"?saved={saved.pk}")
    assert new.context["form"].initial["body"] == campaign.body


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_template_needs_a_name_and_nothing_is_saved_without_one(logged_in, customer, name):
    campaign = make_campaign(customer)
    response = logged_in.post(
        reverse("campaigns:save_template", args=[campaign.uuid]),
        {"template_name": name},
        follow=True,
    )
    assert "The template was not saved" in response.content.decode()
    assert not SavedTemplate.objects.exists()


def test_another_accounts_saved_template_cannot_be_used_seen_or_deleted(logged_in, other_customer):
    theirs = gallery.save_as_template(
        make_campaign(other_customer, body="<p>Their secret recipe</p>"),
        name="Theirs",
        by=other_customer,
    )
    response = logged_in.get(reverse("campaigns:new") + f"?saved={theirs.pk}", follow=True)
    assert "Their secret recipe" not in response.content.decode()
    assert "There is no such template" in response.content.decode()
    assert "Theirs" not in logged_in.get(reverse("campaigns:gallery")).content.decode()
    assert (
        logged_in.get(reverse("campaigns:saved_preview_html", args=[theirs.pk])).status_code == 404
    )
    assert logged_in.post(reverse("campaigns:saved_delete", args=[theirs.pk])).status_code == 404
    assert SavedTemplate.objects.filter(pk=theirs.pk).exists()


def test_deleting_a_saved_template_removes_it(logged_in, customer):
    saved = gallery.save_as_template(make_campaign(customer), name="Old", by=customer)
    logged_in.post(reverse("campaigns:saved_delete", args=[saved.pk]))
    assert not SavedTemplate.objects.exists()


def test_a_visual_gallery_template_starts_a_campaign_that_opens_in_the_visual_editor(
    logged_in, customer
):
    response = logged_in.get(reverse("campaigns:new") + "?template=visual-newsletter")
    form = response.context["form"]
    assert form.initial["content_format"] == "visual" and "<mjml" in form.initial["design"]["mjml"]
    # The design goes back with the form as the page holds it (a hidden field): a page
    # without it could not save a campaign started from a visual template.
    found = re.search(
        r'<input type="hidden" name="design" value="([^"]*)"', response.content.decode()
    )
    assert found, "the form does not carry the design"
    assert json.loads(html.unescape(found.group(1))) == form.initial["design"]
    data = {
        "name": "From the gallery", "subject": form.initial["subject"], "preheader": "",
        "from_name": "Acme", "from_email": "news@acme.example", "reply_to": "",
        "content_format": "visual", "body": "ignored: made from the design",
        "design": html.unescape(found.group(1)), "layout": "",
        "schedule_date": "", "schedule_time": "", "schedule_timezone": "UTC",
    }  # fmt: skip
    logged_in.post(reverse("campaigns:new"), data)
    campaign = Campaign.objects.get(account=customer.account)
    assert campaign.content_format == "visual" and "ignored" not in campaign.body
    assert "/static/campaigns/placeholder.png" in campaign.body
    page = logged_in.get(reverse("campaigns:visual", args=[campaign.uuid]))
    assert page.context["design"]["mjml"] == form.initial["design"]["mjml"]
