"""The visual editor's page: GrapesJS with its MJML preset, served first-party.

GET shows the editor with the campaign's design; POST (JSON: the editor's project and its
MJML) saves it through the campaign service, which compiles and validates the MJML on
the server (mjml.py) and stores the HTML as the campaign's body. GrapesJS sets styles
inline and fills its canvas with <style> elements, so this page alone allows inline
styles; scripts stay Tidings's own files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import User
from tidings.campaigns import services
from tidings.campaigns.media_views import public_url
from tidings.campaigns.models import Campaign, MediaImage
from tidings.campaigns.services import CampaignError, InvalidTemplates
from tidings.core.baseurl import absolute

VISUAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https:; font-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# The design a campaign starts from in the visual editor (heading, text, button, footer).
STARTER_MJML = (Path(__file__).parent / "layouts" / "visual-starter.mjml").read_text("utf-8")


def personalisation_tags() -> list[dict[str, str]]:
    """The template variables a campaign sees (rendering.contact_context, links)."""
    return [
        {"label": _("First name"), "tag": '{{ contact.first_name | default("there") }}'},
        {"label": _("Last name"), "tag": "{{ contact.last_name }}"},
        {"label": _("Full name"), "tag": "{{ contact.name }}"},
        {"label": _("Email address"), "tag": "{{ contact.email }}"},
        {
            "label": _("An attribute (city)"),
            "tag": '{{ contact.attributes.city | default("your town") }}',
        },
        {"label": _("Sender's name"), "tag": "{{ campaign.from_name }}"},
        {"label": _("Postal address"), "tag": "{{ campaign.postal_address }}"},
        {"label": _("Unsubscribe link"), "tag": "{{ unsubscribe_url }}"},
        {"label": _("Preferences link"), "tag": "{{ preferences_url }}"},
    ]


def _texts() -> dict[str, Any]:
    return {
        "image": _("Image"),
        "social": _("Social links"),
        "footer": _("Footer"),
        "footerText": _("You receive this email because you subscribed to it."),
        "unsubscribe": _("Unsubscribe"),
        "preferences": _("Manage your subscriptions"),
        "insertTag": _("Insert a personalisation tag"),
        "tagAdded": _("Tag added at the end of the selected text."),
        "chooseText": _("Select a text block first, or click into a text."),
        "canvas": _("The email being designed"),
        "saving": _("Saving…"),
        "failed": _("The design could not be sent to Tidings: check your connection."),
        "buttons": {
            "open-sm": _("Style"),
            "open-tm": _("Settings"),
            "open-layers": _("Layers"),
            "open-blocks": _("Blocks"),
            "sw-visibility": _("Outlines"),
            "preview": _("Preview"),
            "fullscreen": _("Full screen"),
            "export-template": _("Code"),
        },
    }


def _with_csp(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = VISUAL_CSP
    return response


@customer_required
def campaign_visual(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = get_object_or_404(Campaign, account=account_of(request), uuid=uuid)
    if not campaign.is_editable:
        if request.method == "POST":
            return JsonResponse({"error": _("This campaign can no longer change.")}, status=409)
        messages.error(request, _("This campaign has started sending: it can no longer change."))
        return redirect("campaigns:edit", uuid=campaign.uuid)
    if request.method == "POST":
        return _save(request, campaign)
    design = campaign.design if campaign.content_format == Campaign.Format.VISUAL else {}
    images = MediaImage.objects.filter(account=campaign.account).defer("data")
    context: dict[str, Any] = {
        "campaign": campaign,
        "design": design,
        "starter": STARTER_MJML,
        "assets": [
            {"src": public_url(i), "name": i.name, "width": i.width, "height": i.height}
            for i in images
        ],
        "tags": personalisation_tags(),
        "texts": _texts(),
        # Absolute: the images of the blocks (placeholder, social icons) go in mail.
        "static_base": absolute(static("campaigns/")),
    }
    return _with_csp(render(request, "campaigns/visual.html", context))


def _save(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    try:
        posted = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        posted = None
    if (
        not isinstance(posted, dict)
        or not isinstance(posted.get("mjml"), str)
        or not isinstance(posted.get("project"), dict)
    ):
        return JsonResponse({"error": _("Send the editor's project and its MJML.")}, status=400)
    user = request.user
    assert isinstance(user, User)
    try:
        services.update_campaign(
            campaign,
            by=user,
            content_format=Campaign.Format.VISUAL,
            design={"project": posted["project"], "mjml": posted["mjml"]},
        )
    except InvalidTemplates as error:
        problem = " ".join(error.problems.values())
        return JsonResponse({"error": _("Not saved: %s") % problem}, status=400)
    except CampaignError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse(
        {
            "message": _("Saved."),
            "preview": reverse("campaigns:preview", kwargs={"uuid": campaign.uuid}),
        }
    )
