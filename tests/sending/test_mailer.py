"""A campaign's messages spliced from fixed pieces are the messages rendered in full.

The mailer renders a campaign once with placeholders where the personal values go and
splices each contact's values in (campaigns.splice, sending.mailer). Over random
templates and random contacts, the subject, HTML and text of a spliced message, once
decoded, are exactly those of the same message rendered in full, tracking and footer
included; a template that uses a personal value where splicing cannot follow it is
rendered in full."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings.audience.links import preference_url_for
from tidings.campaigns import splice
from tidings.campaigns.models import Campaign
from tidings.sending import mailer as mailer_module
from tidings.sending import services, tracking
from tidings.sending.mailer import CampaignMailer, Recipient
from tidings.sending.models import SendingSettings

pytestmark = pytest.mark.django_db

POSTAL = "12 Baker Lane, 1000 Brussels"
FIXTURES = [HealthCheck.function_scoped_fixture]  # one campaign, changed by each example

# Pieces a template is made of: fixed text (with what escaping and tidying look at) and
# outputs of personal values, some that can be spliced and some that cannot.
FIXED = st.sampled_from(
    [
        "<p>Hello</p>",
        " & < > \" ' ",
        "\n\n\n",
        "[see](#) ",
        '<a href="https://example.org/a?x=1&amp;y=2">read</a>',
        "   \t ",
        "{{ campaign.name }}",
        "Ünïcödé ✓",
        "(",
        ")",
        "<br>",
        "<ul>",
        "</ul>",
        "{% if campaign.postal_address %}<i>{{ campaign.postal_address }}</i>{% endif %}",
    ]
)
SPLICED = st.sampled_from(
    [
        "{{ contact.name }}",
        "{{ contact.first_name | default('friend', true) }}",
        "{{ contact.attributes.city }}",
        "{{ contact.attributes.city | upper }}",
        "{{ contact.attributes.city | default('nowhere') | capitalize }}",
        "{{ contact.attributes.missing | trim }}",
        "{{ contact['name'] | lower }}",
        "{{ contact.attributes.city | title }}",
        "{{ contact.attributes.city | upper | default('none', true) }}",
        "{{ contact.first_name | default('friend') | upper }}",
        "{{ contact.email }}",
        "{{ contact.name ~ '!' }}",
        '<a href="{{ unsubscribe_url }}">leave</a>',
        '<a href="{{ preferences_url }}">prefs</a>',
        "{{ subject }}",
        "<p>{{ contact.name }}</p>",
        "<li>{{ contact.attributes.city }}</li>",
    ]
)
NOT_SPLICED = st.sampled_from(
    [
        "{% if contact.name %}Dear {{ contact.name }}{% else %}Hello{% endif %}",
        "{% for c in contact.name %}{{ c }}{% endfor %}",
        "{% set n = contact.name %}{{ n }}",
    ]
)
# Values, with what escaping and tidying look at: blanks at the ends, line breaks,
# brackets, markup, nothing at all.
TEXT = st.one_of(
    st.sampled_from(["", " ", " Ada ", "Ada\nLovelace", "[x](#y)", "(x)", "<b>&amp;", "Zoë"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)


@st.composite
def templates(draw: st.DrawFn, *, splicable: bool) -> str:
    pieces = draw(st.lists(st.one_of(FIXED, SPLICED), min_size=1, max_size=8))
    if not splicable:
        pieces.insert(draw(st.integers(0, len(pieces))), draw(NOT_SPLICED))
    return "".join(pieces)


@st.composite
def recipients(draw: st.DrawFn) -> Recipient:
    return Recipient(
        delivery_id=draw(st.integers(1, 10**6)),
        message_id="<test@news.example.org>",
        email="reader@example.net",
        name=draw(st.one_of(st.just(""), st.just("Ada Lovelace"), TEXT)),
        attributes=draw(
            st.one_of(
                st.just({}),
                st.fixed_dictionaries(
                    {"city": st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.floats())}
                ),
            )
        ),
        uuid=uuid.uuid4().hex,
        allow_tracking=draw(st.booleans()),
    )


def parts(raw: bytes) -> tuple[str, str, str]:
    """Subject, HTML and text of a message, line ends as the templates have them."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return str(message["Subject"]), html.replace("\r\n", "\n"), text.replace("\r\n", "\n")


def full(mailer: CampaignMailer, recipient: Recipient) -> tuple[str, str, str]:
    """The message rendered in full, as the mailer renders one it cannot splice."""

    unsubscribe = tracking.unsubscribe_url_for(recipient.uuid, mailer.campaign.pk)
    context = mailer.context_for(
        recipient, unsubscribe=unsubscribe, preferences=preference_url_for(recipient.uuid)
    )
    subject, html, text = mailer.body(recipient, context)
    return " ".join(subject.split()), html, text


@pytest.fixture
def campaign(customer):  # type: ignore[no-untyped-def]
    services.set_postal_address(customer.account, POSTAL, by=customer)
    return Campaign.objects.create(
        account=customer.account,
        name="News & views",
        subject="Hi {{ contact.first_name }}",
        from_email="news@news.example.org",
        content_format=Campaign.Format.HTML,
        body="<p>x</p>",
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=templates(splicable=True),
    subject=st.one_of(st.just("Hello"), st.just("Hi {{ contact.first_name }}")),
    tracked=st.booleans(),
    per_contact=st.booleans(),
    people=st.lists(recipients(), min_size=1, max_size=4),
)
def test_a_spliced_message_is_the_message_rendered_in_full(
    campaign, body, subject, tracked, per_contact, people, time_machine
):
    time_machine.move_to("2026-12-06 09:00Z", tick=False)  # the links' signatures hold a time
    # The mailer keeps what the templates give per (campaign, updated_at): with the clock
    # stopped every example's save has the same updated_at, so forget the last example's.
    mailer_module._cache.clear()
    campaign.body, campaign.subject = body, subject
    campaign.track_opens = campaign.track_clicks = tracked
    campaign.save()
    SendingSettings.objects.filter(account=campaign.account).update(
        tracking="contact" if per_contact else "aggregate"
    )
    mailer = CampaignMailer(campaign)
    assert mailer.html_part is not None and mailer.text_plan is not None
    for person in people:
        subject_got, html_got, text_got = parts(mailer.message_for(person))
        subject_full, html_full, text_full = full(mailer, person)
        assert subject_got == subject_full
        assert html_got == html_full.replace("\r\n", "\n")
        assert text_got == text_full.replace("\r\n", "\n")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=templates(splicable=False), person=recipients())
def test_a_template_that_uses_a_value_elsewhere_is_rendered_in_full(
    campaign, body, person, time_machine
):
    time_machine.move_to("2026-12-06 09:00Z", tick=False)
    mailer_module._cache.clear()  # as above: the same updated_at in every example
    campaign.body = body
    campaign.save()
    mailer = CampaignMailer(campaign)
    assert mailer.html_part is None
    _, html, text = parts(mailer.message_for(person))
    _, html_full, text_full = full(mailer, person)
    assert (html, text) == (html_full.replace("\r\n", "\n"), text_full.replace("\r\n", "\n"))


def test_splicing_keeps_the_sandbox_and_its_escaping():
    context = {"campaign": {"name": "N"}}
    part = splice.plan("<b>{{ contact.name }}</b>", html=True, context=context)
    assert part is not None and part.pieces == ("<b>", "</b>")
    values = part.values_for({"contact": {"name": "<script>x</script>"}, "campaign": {}})
    assert values == ["&lt;script&gt;x&lt;/script&gt;"]
    assert splice.plan("{{ contact.__class__ }}", html=True, context=context) is not None
    refused = splice.plan("{{ cycler('a', 'b').next() ~ contact.name }}", html=True, context={})
    assert refused is None  # a call keeps state between outputs: rendered in full
