# ruff: noqa: E501  (the MJML documents read best on one line each)
"""The visual editor's server side: MJML checked by MJML's rules and compiled by mrml,
template tags kept, nothing loaded from elsewhere; a visual campaign is rendered by the
same sandbox as the others; bad designs are refused clearly and change nothing."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tidings.campaigns import gallery, mjml, rendering, services
from tidings.campaigns.models import Campaign
from tidings.campaigns.services import InvalidTemplates
from tidings.campaigns.visual_views import STARTER_MJML, VISUAL_CSP

pytestmark = pytest.mark.django_db

GOOD = """<mjml><mj-body>
  <mj-section><mj-column>
    <mj-text>Hello {{ contact.first_name | default("there") }}</mj-text>
    <mj-button href="{{ preferences_url }}">Preferences</mj-button>
    <mj-social><mj-social-element name="facebook" href="https://example.com">F</mj-social-element></mj-social>
  </mj-column></mj-section>
  <mj-section><mj-column><mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ campaign.postal_address }}</mj-text></mj-column></mj-section>
</mj-body></mjml>"""


def visual_campaign(customer, source: str = GOOD) -> Campaign:  # type: ignore[no-untyped-def]
    return services.create_campaign(
        customer.account, by=customer, name="Visual", subject="Hi {{ contact.first_name }}",
        preheader="The preheader", from_name="Acme", from_email="news@acme.example",
        content_format="visual", body="", design={"project": {"pages": []}, "mjml": source},
    )  # fmt: skip


def test_mjml_compiles_to_responsive_html_with_the_tags_kept_and_nothing_from_elsewhere(settings):
    settings.BASE_URL = "https://mail.example.org"
    html = mjml.to_html(GOOD)
    assert '{{ contact.first_name | default("there") }}' in html
    assert 'href="{{ unsubscribe_url }}"' in html and "{{ preheader }}" in html
    assert "@media only screen" in html  # responsive columns
    assert "https://mail.example.org/static/campaigns/social/facebook.png" in html
    assert "mailjet.com" not in html and "googleapis" not in html


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("<mjml><mj-body><mj-text>x</mj-text></mj-body></mjml>", "<mj-text> cannot sit in <mj-body>"),
        ("<mjml><mj-body><mj-section><mj-column><mj-foo/></mj-column></mj-section></mj-body></mjml>",
         "<mj-foo> is not an MJML element"),
        ('<mjml><mj-head><mj-font name="Roboto" href="https://fonts.googleapis.com/css?family=Roboto"/></mj-head><mj-body></mj-body></mjml>',
         "<mj-font> is not an MJML element"),
        ('<mjml><mj-body><mj-include path="/etc/passwd"/></mj-body></mjml>', "<mj-include> is not"),
        ("<mjml><mj-body><mj-section>loose text</mj-section></mj-body></mjml>", "text cannot sit in <mj-section>"),
        ("<mjml><mj-body><mj-section><div>x</div></mj-section></mj-body></mjml>", "<div> cannot sit in <mj-section>"),
        ('<mjml><mj-body><mj-section><mj-column><mj-image src="javascript:alert(1)"/></mj-column></mj-section></mj-body></mjml>',
         "src must be a full http(s)"),
        ("<mjml><mj-body><mj-section>", "is never closed"),
        ("Hello, not MJML", "one <mjml> element"),
        # Strict, as MJML's own validation: attributes each element takes, and their types.
        ('<mjml><mj-body><mj-section><mj-column><mj-text href="https://a.example">x</mj-text></mj-column></mj-section></mj-body></mjml>',
         "<mj-text> has no attribute href"),
        ('<mjml><mj-body><mj-section padding="12 pixels"></mj-section></mj-body></mjml>',
         "padding must be a size in px or %, not “12 pixels”"),
        ('<mjml><mj-body><mj-section><mj-column><mj-button background-color="#12345">Go</mj-button></mj-column></mj-section></mj-body></mjml>',
         "background-color must be a colour"),
        ('<mjml><mj-body><mj-section><mj-column><mj-image align="middle" src="https://a.example/i.png"/></mj-column></mj-section></mj-body></mjml>',
         "align must be one of center, justify, left, right"),
        # Only a real template tag's stand-in skips the type check, not any value that
        # starts like one.
        ('<mjml><mj-body><mj-section padding="tdg is not a size"></mj-section></mj-body></mjml>',
         "padding must be a size in px or %"),
    ],
    ids=["text-in-body", "unknown", "web-font", "include", "loose-text", "html-in-section",
         "script-url", "unclosed", "not-mjml", "unknown-attribute", "bad-size", "bad-colour",
         "bad-choice", "tag-lookalike"],
)  # fmt: skip
def test_mjml_breaking_the_rules_is_refused_with_the_reason(source, problem):
    with pytest.raises(mjml.MjmlError, match="This MJML is not valid") as refused:
        mjml.to_html(source)
    assert problem in str(refused.value)


def test_a_visual_campaign_is_rendered_by_the_sandbox_personalised_without_the_layout(customer):
    campaign = visual_campaign(customer)
    assert "<mjml" not in campaign.body and "{{ contact.first_name" in campaign.body
    rendered = rendering.render(
        campaign,
        rendering.sample_contact(),
        links={
            "unsubscribe_url": "https://t.example/u/1",
            "preferences_url": "https://t.example/p",
        },
        postal_address="1 Bread Street, Breadville",
    )
    assert rendered.subject == "Hi Alex"
    assert "Hello Alex" in rendered.html and "The preheader" in rendered.html
    assert 'href="https://t.example/u/1"' in rendered.html and "1 Bread Street" in rendered.html
    assert rendered.html.count("<body") == 1  # not wrapped in the default layout
    assert "unsubscribe_url" in rendered.links_used
    assert "Hello Alex" in rendered.text


def test_the_sandbox_still_guards_templates_inside_blocks(customer):
    unsafe = GOOD.replace("Hello {{", "{{ ''.__class__.__mro__ }} Hello {{")
    with pytest.raises(InvalidTemplates):
        visual_campaign(customer, unsafe)
    assert not Campaign.objects.exists()


def test_the_body_of_a_visual_campaign_is_made_from_its_design_not_taken_from_the_client(customer):
    campaign = visual_campaign(customer)
    services.update_campaign(campaign, by=customer, content_format="visual",
                             body="<script>evil()</script>", design=campaign.design)  # fmt: skip
    campaign.refresh_from_db()
    assert "evil" not in campaign.body and "Hello {{" in campaign.body


def test_saving_as_a_template_and_duplicating_keep_the_design(customer):
    campaign = visual_campaign(customer)
    saved = gallery.save_as_template(campaign, name="Visual look", by=customer)
    assert saved.design == campaign.design and saved.content_format == "visual"
    values = gallery.starting_values(customer.account, saved_pk=str(saved.pk))
    assert values["design"] == campaign.design
    copy = services.duplicate_campaign(campaign, by=customer)
    assert copy.design == campaign.design and copy.body == campaign.body


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def test_the_editor_page_has_its_own_narrow_policy_and_first_party_files(logged_in, customer):
    campaign = visual_campaign(customer)
    response = logged_in.get(reverse("campaigns:visual", args=[campaign.uuid]))
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == VISUAL_CSP
    assert "script-src 'self';" in VISUAL_CSP and "unsafe-eval" not in VISUAL_CSP
    page = response.content.decode()
    assert "/static/campaigns/vendor/grapes.min.js" in page
    assert "/static/campaigns/vendor/grapesjs-mjml.min.js" in page
    assert "cdn" not in page.lower()
    # Other campaign pages keep the strict policy.
    other = logged_in.get(reverse("campaigns:edit", args=[campaign.uuid]))
    assert "unsafe-inline" not in other["Content-Security-Policy"]


def test_a_new_visual_session_starts_from_the_starter_design(logged_in, customer):
    campaign = services.create_campaign(
        customer.account, by=customer, name="Plain", subject="S", from_email="a@acme.example",
        content_format="markdown", body="Hi",
    )  # fmt: skip
    response = logged_in.get(reverse("campaigns:visual", args=[campaign.uuid]))
    assert response.context["design"] == {}
    mjml.to_html(STARTER_MJML)  # the starter itself passes the checks


def post_design(client, campaign, payload):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("campaigns:visual", args=[campaign.uuid]),
        data=json.dumps(payload) if not isinstance(payload, bytes) else payload,
        content_type="application/json",
    )


def test_saving_a_design_stores_the_document_and_the_compiled_html(logged_in, customer):
    campaign = services.create_campaign(
        customer.account, by=customer, name="Plain", subject="S", from_email="a@acme.example",
        content_format="markdown", body="Hi",
    )  # fmt: skip
    response = post_design(logged_in, campaign, {"project": {"pages": [1]}, "mjml": GOOD})
    assert response.status_code == 200 and response.json()["message"] == "Saved."
    campaign.refresh_from_db()
    assert campaign.content_format == "visual"
    assert campaign.design == {"project": {"pages": [1]}, "mjml": GOOD}
    assert "Hello {{ contact.first_name" in campaign.body


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "Send the editor's project and its MJML."),
        ({"mjml": GOOD}, "Send the editor's project and its MJML."),
        ({"project": {}, "mjml": "<mjml><mj-body><p>x</p></mj-body></mjml>"},
         "Not saved: This MJML is not valid"),
        ({"project": {}, "mjml": GOOD.replace("Hello {{", "Hello {{ broken(")}, "Not saved:"),
        ({"project": {}, "mjml": GOOD.replace("<mj-text", '<mj-text size="big"', 1)},
         "Not saved: This MJML is not valid: line 3: <mj-text> has no attribute size"),
    ],
    ids=["not-json", "no-project", "invalid-mjml", "broken-tag", "strict-attribute"],
)  # fmt: skip
def test_a_bad_design_is_refused_clearly_and_changes_nothing(logged_in, customer, payload, message):
    campaign = visual_campaign(customer)
    before = (campaign.body, campaign.design)
    response = post_design(logged_in, campaign, payload)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    campaign.refresh_from_db()
    assert (campaign.body, campaign.design) == before


def test_another_accounts_campaign_cannot_be_designed(logged_in, other_customer):
    theirs = visual_campaign(other_customer)
    assert logged_in.get(reverse("campaigns:visual", args=[theirs.uuid])).status_code == 404
    assert post_design(logged_in, theirs, {"project": {}, "mjml": GOOD}).status_code == 404


def test_defaults_in_mj_attributes_and_template_tags_in_values_are_accepted():
    source = (
        '<mjml><mj-head><mj-attributes><mj-all font-family="Arial" padding="4px 8px"/>'
        '<mj-class name="big" font-size="20px"/></mj-attributes></mj-head><mj-body>'
        '<mj-section css-class="top"><mj-column width="50%"><mj-text mj-class="big" '
        'color="{{ contact.attributes.colour }}">Hi</mj-text></mj-column></mj-section>'
        "</mj-body></mjml>"
    )
    assert "Hi" in mjml.to_html(source)
