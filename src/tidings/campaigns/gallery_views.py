"""The template gallery's pages: Tidings's templates and the account's saved ones,
their sandboxed previews, saving a campaign as a template and deleting one."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import User
from tidings.campaigns import gallery, rendering
from tidings.campaigns.models import Campaign, SavedTemplate
from tidings.campaigns.services import CampaignError, InvalidTemplates
from tidings.campaigns.views import _sandboxed, customer_page


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _saved(request: HttpRequest, pk: int) -> SavedTemplate:
    return get_object_or_404(SavedTemplate, account=account_of(request), pk=pk)


@customer_page
def gallery_page(request: HttpRequest) -> HttpResponse:
    saved = SavedTemplate.objects.filter(account=account_of(request))
    return render(request, "campaigns/gallery.html", {"built_in": gallery.BUILT_IN, "saved": saved})


def _preview(template: gallery.GalleryTemplate | SavedTemplate) -> HttpResponse:
    try:
        return _sandboxed(gallery.render_template(template).html)
    except rendering.TemplateError as error:
        message = _("This template cannot be rendered: %(error)s") % {"error": escape(error)}
        return _sandboxed(f"<p>{message}</p>", status=422)


@customer_required
@never_cache
@xframe_options_sameorigin
def gallery_preview_html(request: HttpRequest, slug: str) -> HttpResponse:
    account_of(request)
    template = gallery.built_in(slug)
    if template is None:
        raise Http404
    return _preview(template)


@customer_required
@never_cache
@xframe_options_sameorigin
def saved_preview_html(request: HttpRequest, pk: int) -> HttpResponse:
    return _preview(_saved(request, pk))


@customer_page
@require_POST
def saved_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = _saved(request, pk)
    gallery.delete_template(template, by=_user(request))
    messages.success(request, _("Deleted the template “%(name)s”.") % {"name": template.name})
    return redirect("campaigns:gallery")


@customer_page
@require_POST
def save_as_template(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = get_object_or_404(Campaign, account=account_of(request), uuid=uuid)
    try:
        saved = gallery.save_as_template(
            campaign, name=request.POST.get("template_name", ""), by=_user(request)
        )
    except InvalidTemplates as error:
        messages.error(
            request,
            _("The template was not saved: %(why)s") % {"why": " ".join(error.problems.values())},
        )
        return redirect("campaigns:edit", uuid=campaign.uuid)
    except CampaignError as error:
        messages.error(request, str(error))
        return redirect("campaigns:edit", uuid=campaign.uuid)
    messages.success(
        request,
        _("Saved “%(name)s” as a template: it is in the gallery.") % {"name": saved.name},
    )
    return redirect("campaigns:edit", uuid=campaign.uuid)
