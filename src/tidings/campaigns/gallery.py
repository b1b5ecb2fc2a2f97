"""The template gallery: Tidings's designed starting points and the customer's own.

A built-in template is a visual editor document (an MJML file in `gallery/`) with a
subject and a preheader: a template chosen here opens in the visual editor, its blocks
ready to change, with the template language working inside them; the campaign's body is
the HTML compiled from it (mjml.py), footer included. A customer's saved templates keep
whichever mode they were written in (visual, HTML or Markdown). Every one is checked
in Chromium at 375 pixels (no horizontal scroll) and with axe-core (no contrast
violation, light and dark) (tests/campaigns/test_gallery_browser.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.templatetags.static import static
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.accounts.models import Account, User
from tidings.campaigns import mjml, rendering
from tidings.campaigns.models import Campaign, Layout, SavedTemplate
from tidings.campaigns.services import CampaignError, InvalidTemplates
from tidings.core.baseurl import absolute

_FOLDER = Path(__file__).parent / "gallery"


@dataclass(frozen=True)
class GalleryTemplate:
    slug: str
    name: str | Promise
    description: str | Promise
    subject: str
    preheader: str
    content_format: str
    filename: str

    @property
    def design(self) -> dict[str, str]:
        """The visual editor's document of a visual template (its MJML), else empty."""
        if self.content_format != Campaign.Format.VISUAL:
            return {}
        # The blocks' images are Tidings's static files, at their absolute address.
        return {"mjml": _body(self.filename).replace("STATIC/", absolute(static("campaigns/")))}

    @property
    def body(self) -> str:
        if self.content_format == Campaign.Format.VISUAL:
            return mjml.to_html(self.design["mjml"])
        return _body(self.filename)


@functools.cache
def _body(filename: str) -> str:
    return (_FOLDER / filename).read_text(encoding="utf-8")


_VISUAL = Campaign.Format.VISUAL
BUILT_IN: tuple[GalleryTemplate, ...] = (
    GalleryTemplate(
        "visual-newsletter",
        gettext_lazy("Newsletter for the visual editor"),
        gettext_lazy("Image, main story, two columns, social links, footer: drag and drop."),
        'News for you, {{ contact.first_name | default("friend") }}',
        "What happened this month",
        Campaign.Format.VISUAL,
        "visual-newsletter.mjml",
    ),
    GalleryTemplate(
        "newsletter",
        gettext_lazy("Newsletter"),
        gettext_lazy("A main story and two shorter ones side by side."),
        'News for you, {{ contact.first_name | default("friend") }}',
        "What happened this month, in three short stories",
        _VISUAL,
        "newsletter.mjml",
    ),
    GalleryTemplate(
        "announcement",
        gettext_lazy("Announcement"),
        gettext_lazy("One important change: what, when, what to do."),
        "Something important is changing",
        "What changes, when, and what it means for you",
        _VISUAL,
        "announcement.mjml",
    ),
    GalleryTemplate(
        "product-launch",
        gettext_lazy("Product launch"),
        gettext_lazy("A new product, its benefits and a launch offer."),
        "Meet the product you asked for",
        "It is here, with a launch offer",
        _VISUAL,
        "product-launch.mjml",
    ),
    GalleryTemplate(
        "event-invitation",
        gettext_lazy("Event invitation"),
        gettext_lazy("When, where, the programme and a reply button."),
        'You are invited, {{ contact.first_name | default("dear friend") }}',
        "An evening of talks and conversation",
        _VISUAL,
        "event-invitation.mjml",
    ),
    GalleryTemplate(
        "welcome",
        gettext_lazy("Welcome"),
        gettext_lazy("For new subscribers: what to expect and where to start."),
        'Welcome, {{ contact.first_name | default("and thank you") }}',
        "What to expect from us",
        _VISUAL,
        "welcome.mjml",
    ),
    GalleryTemplate(
        "re-engagement",
        gettext_lazy("Re-engagement"),
        gettext_lazy("Asks quiet contacts whether they still want your mail."),
        "Do you still want to hear from us?",
        "Keep receiving our emails, choose fewer, or leave in one click",
        _VISUAL,
        "re-engagement.mjml",
    ),
    GalleryTemplate(
        "digest",
        gettext_lazy("Digest"),
        gettext_lazy("A list of articles, each with one line on why it matters."),
        "Your weekly digest",
        "The five things worth your time this week",
        _VISUAL,
        "digest.mjml",
    ),
    GalleryTemplate(
        "plain",
        gettext_lazy("Plain letter"),
        gettext_lazy("Text only: a letter to one person."),
        'A word for you, {{ contact.first_name | default("friend") }}',
        "",
        _VISUAL,
        "plain.mjml",
    ),
)
_BY_SLUG = {t.slug: t for t in BUILT_IN}


def built_in(slug: str) -> GalleryTemplate | None:
    return _BY_SLUG.get(slug)


def sample_campaign(
    *, subject: str, preheader: str, content_format: str, body: str, layout: Layout | None
) -> Campaign:
    """An unsaved campaign to render a template with (previews and checks)."""
    return Campaign(
        name=str(_("Template preview")),
        subject=subject,
        preheader=preheader,
        from_name=str(_("Your organisation")),
        from_email="news@example.com",
        content_format=content_format,
        body=body,
        layout=layout,
    )


def render_template(template: GalleryTemplate | SavedTemplate) -> rendering.Rendered:
    """A gallery or saved template as the made-up contact would receive it."""
    campaign = sample_campaign(
        subject=template.subject,
        preheader=template.preheader,
        content_format=template.content_format,
        body=template.body,
        layout=template.layout if isinstance(template, SavedTemplate) else None,
    )
    return rendering.render(campaign, rendering.sample_contact())


def save_as_template(campaign: Campaign, *, name: str, by: User | None) -> SavedTemplate:
    """Keep the campaign's content (subject, preheader, format, body, layout) as a
    template of its account."""
    name = name.strip()
    if not name:
        raise InvalidTemplates({"name": _("Give the template a name.")})
    if len(name) > 200:
        raise InvalidTemplates({"name": _("A template's name has at most 200 characters.")})
    saved = SavedTemplate(
        account=campaign.account,
        name=name,
        subject=campaign.subject,
        preheader=campaign.preheader,
        content_format=campaign.content_format,
        body=campaign.body,
        design=campaign.design,
        layout=campaign.layout,
    )
    saved.full_clean()
    with transaction.atomic():
        saved.save()
    return saved


def delete_template(template: SavedTemplate, *, by: User | None) -> None:
    """Remove a saved template; campaigns made from it keep their content."""
    template.delete()


def starting_values(
    account: Account, *, built_in_slug: str = "", saved_pk: str = ""
) -> dict[str, object]:
    """The campaign form's initial content from a gallery template or a saved one of
    `account`; CampaignError when there is no such template."""
    source: GalleryTemplate | SavedTemplate | None = None
    if built_in_slug:
        source = built_in(built_in_slug)
    elif saved_pk:
        source = (
            SavedTemplate.objects.filter(account=account, pk=int(saved_pk)).first()
            if saved_pk.isdigit()
            else None
        )
    if source is None:
        raise CampaignError(_("There is no such template: start from the gallery again."))
    values: dict[str, object] = {
        "subject": source.subject,
        "preheader": source.preheader,
        "content_format": source.content_format,
        "body": source.body,
        "design": source.design,
    }
    if isinstance(source, SavedTemplate) and source.layout_id:
        values["layout"] = source.layout_id
    return values
