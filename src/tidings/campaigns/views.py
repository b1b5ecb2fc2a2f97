"""The campaign editor: campaigns and layouts of the logged-in customer's account.

Thin: every query starts from `request.user.account` (another account's id is a 404)
and every write is a service call. The rendered email is shown only inside an iframe
with `sandbox=""`, served with a CSP `sandbox` of its own: a customer's HTML never runs
in Tidings's pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import User
from tidings.audience.models import Contact
from tidings.audience.services import InvalidEmail, normalise_email
from tidings.campaigns import gallery, rendering, services
from tidings.campaigns.content import STARTER_BODY
from tidings.campaigns.forms import (
    CampaignForm,
    LayoutForm,
    PreviewContactForm,
    TestSendForm,
)
from tidings.campaigns.models import Campaign, Layout
from tidings.campaigns.services import CampaignError, InvalidTemplates
from tidings.sending import proofs, reports

# The editor pages run only Tidings's own script and styles.
EDITOR_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The rendered email: no script, no form, no same origin; images and inline styles only.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https: data:; frame-ancestors 'self'"
)

View = Callable[..., HttpResponse]


def customer_page(view: View) -> View:
    """Logged in, with an open account, and the editor's CSP on the answer."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        account_of(request)
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Security-Policy", EDITOR_CSP)
        return response

    return customer_required(wrapper)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _campaign(request: HttpRequest, uuid: UUID) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("layout"), account=account_of(request), uuid=uuid
    )


def _layout(request: HttpRequest, pk: int) -> Layout:
    return get_object_or_404(Layout, account=account_of(request), pk=pk)


def _contact(request: HttpRequest, value: str | None) -> Contact | None:
    """The account's contact with this uuid, if any."""
    if not value:
        return None
    try:
        key = UUID(value)
    except ValueError:
        return None
    return Contact.objects.filter(account=account_of(request), uuid=key).first()


# Campaigns ------------------------------------------------------------------------------


@customer_page
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = (
        Campaign.objects.filter(account=account_of(request))
        .select_related("layout")
        .order_by("-created_at")
    )
    rates = reports.key_rates(list(campaigns))
    rows = [(campaign, rates.get(campaign.pk)) for campaign in campaigns]
    return render(request, "campaigns/list.html", {"campaigns": campaigns, "rows": rows})


def _save_campaign(
    request: HttpRequest, form: CampaignForm, campaign: Campaign | None
) -> Campaign | None:
    """Call the service; template problems go back onto the form's fields."""
    user = _user(request)
    values = form.service_values()
    lists, segments = list(form.cleaned_data["lists"]), list(form.cleaned_data["segments"])
    try:
        if campaign is None:
            return services.create_campaign(
                form.account, by=user, lists=lists, segments=segments, **values
            )
        return services.update_campaign(campaign, by=user, lists=lists, segments=segments, **values)
    except InvalidTemplates as error:
        for field, problem in error.problems.items():
            form.add_error(field if field in form.fields else None, problem)
    except CampaignError as error:
        form.add_error(None, str(error))
    return None


def _after_save(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    if "preview" in request.POST:
        return redirect("campaigns:preview", uuid=campaign.uuid)
    messages.success(request, _("Saved “%(name)s”.") % {"name": campaign.name})
    return redirect("campaigns:edit", uuid=campaign.uuid)


@customer_page
def campaign_new(request: HttpRequest) -> HttpResponse:
    account, user = account_of(request), _user(request)
    initial: dict[str, object] = {
        "from_name": account.name,
        "from_email": user.email,
        "content_format": Campaign.Format.MARKDOWN,
        "subject": 'News for you, {{ contact.first_name | default("friend") }}',
        "body": STARTER_BODY,
    }
    chosen = {
        "built_in_slug": request.GET.get("template", ""),
        "saved_pk": request.GET.get("saved", ""),
    }
    if request.method == "GET" and any(chosen.values()):
        try:
            initial |= gallery.starting_values(account, **chosen)
        except CampaignError as error:
            messages.error(request, str(error))
            return redirect("campaigns:gallery")
    form = CampaignForm(request.POST or None, account=account, initial=initial)
    if request.method == "POST" and form.is_valid():
        campaign = _save_campaign(request, form, None)
        if campaign is not None:
            return _after_save(request, campaign)
    return render(request, "campaigns/edit.html", {"form": form, "campaign": None})


@customer_page
def campaign_edit(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    if not campaign.is_editable:
        if request.method == "POST":
            messages.error(
                request, _("This campaign has started sending: it can no longer change.")
            )
            return redirect("campaigns:edit", uuid=campaign.uuid)
        return render(request, "campaigns/detail.html", {"campaign": campaign})
    form = CampaignForm(request.POST or None, instance=campaign, account=campaign.account)
    if request.method == "POST" and form.is_valid():
        saved = _save_campaign(request, form, campaign)
        if saved is not None:
            return _after_save(request, saved)
    return render(request, "campaigns/edit.html", {"form": form, "campaign": campaign})


def _preview_context(
    request: HttpRequest, campaign: Campaign, contact: Contact | None, **extra: Any
) -> dict[str, Any]:
    shown = contact or rendering.sample_contact(campaign.account)
    context: dict[str, Any] = {
        "campaign": campaign,
        "contact": contact,
        "shown": shown,
        "contact_form": PreviewContactForm(initial={"email": contact.email if contact else ""}),
        "test_form": TestSendForm(initial={"recipients": _user(request).email}),
        **extra,
    }
    try:
        context["rendered"] = rendering.render(campaign, shown)
    except rendering.TemplateError as error:
        context["error"] = str(error)
    frame = reverse("campaigns:preview_html", kwargs={"uuid": campaign.uuid})
    context["frame_url"] = f"{frame}?contact={contact.uuid}" if contact else frame
    return context


@customer_page
def campaign_preview(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    contact = _contact(request, request.GET.get("contact"))
    if request.method == "POST":
        # Choosing a contact by address: posted, so the address stays out of URLs and logs.
        form = PreviewContactForm(request.POST)
        email = form.data.get("email", "").strip()
        if not email:
            return redirect("campaigns:preview", uuid=campaign.uuid)
        try:
            found = Contact.objects.filter(
                account=campaign.account, email=normalise_email(email)
            ).first()
        except InvalidEmail as error:
            messages.error(request, str(error))
            found = None
        else:
            if found is None:
                messages.error(request, _("No contact of yours has that address."))
        url = reverse("campaigns:preview", kwargs={"uuid": campaign.uuid})
        return redirect(f"{url}?contact={found.uuid}" if found else url)
    return render(request, "campaigns/preview.html", _preview_context(request, campaign, contact))


@customer_required
@never_cache
@xframe_options_sameorigin
def campaign_preview_html(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    contact = _contact(request, request.GET.get("contact"))
    try:
        html = rendering.render(campaign, contact or rendering.sample_contact()).html
    except rendering.TemplateError as error:
        return _sandboxed(f"<p>This campaign cannot be rendered: {escape(error)}</p>", status=422)
    return _sandboxed(html)


def _sandboxed(html: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(html, content_type="text/html; charset=utf-8", status=status)
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@customer_page
@require_POST
def campaign_test(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    contact = _contact(request, request.POST.get("contact"))
    form = TestSendForm(request.POST)
    if form.is_valid():
        try:
            to = services.parse_test_recipients(form.cleaned_data["recipients"])
            sent = proofs.send_test(campaign, to=to, contact=contact, by=_user(request))
        except CampaignError as error:
            form.add_error("recipients", str(error))
        else:
            messages.success(
                request,
                _("Test sent to %(join)s.") % {"join": ", ".join(to)}
                if sent
                else "Nothing was sent.",
            )
            url = reverse("campaigns:preview", kwargs={"uuid": campaign.uuid})
            return redirect(f"{url}?contact={contact.uuid}" if contact else url)
    context = _preview_context(request, campaign, contact, test_form=form)
    return render(request, "campaigns/preview.html", context, status=400)


@customer_page
@require_POST
def campaign_duplicate(request: HttpRequest, uuid: UUID) -> HttpResponse:
    copy = services.duplicate_campaign(_campaign(request, uuid), by=_user(request))
    messages.success(request, _("Made “%(name)s”, a draft you can change.") % {"name": copy.name})
    return redirect("campaigns:edit", uuid=copy.uuid)


@customer_page
def campaign_delete(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    if request.method == "POST":
        try:
            services.delete_campaign(campaign, by=_user(request))
        except CampaignError as error:
            messages.error(request, str(error))
            return redirect("campaigns:edit", uuid=campaign.uuid)
        messages.success(request, _("Deleted “%(name)s”.") % {"name": campaign.name})
        return redirect("campaigns:list")
    return render(request, "campaigns/delete.html", {"campaign": campaign})


# Layouts --------------------------------------------------------------------------------


@customer_page
def layout_list(request: HttpRequest) -> HttpResponse:
    layouts = Layout.objects.filter(account=account_of(request)).order_by("name")
    return render(request, "campaigns/layouts.html", {"layouts": layouts})


def _save_layout(request: HttpRequest, form: LayoutForm, layout: Layout | None) -> Layout | None:
    data, user = form.cleaned_data, _user(request)
    try:
        if layout is None:
            return services.create_layout(
                account_of(request), name=data["name"], html=data["html"], by=user
            )
        return services.update_layout(layout, name=data["name"], html=data["html"], by=user)
    except InvalidTemplates as error:
        for problem in error.problems.values():
            form.add_error("html", problem)
    except CampaignError as error:
        form.add_error(None, str(error))
    return None


@customer_page
def layout_new(request: HttpRequest) -> HttpResponse:
    form = LayoutForm(
        request.POST or None,
        initial={
            "name": _("My layout"),
            "html": rendering.default_layout_html(account_of(request).language),
        },
    )
    if request.method == "POST" and form.is_valid():
        layout = _save_layout(request, form, None)
        if layout is not None:
            messages.success(request, _("Saved the layout “%(name)s”.") % {"name": layout.name})
            return redirect("campaigns:layout_edit", pk=layout.pk)
    return render(request, "campaigns/layout_edit.html", {"form": form, "layout": None})


@customer_page
def layout_edit(request: HttpRequest, pk: int) -> HttpResponse:
    layout = _layout(request, pk)
    form = LayoutForm(request.POST or None, instance=layout)
    if request.method == "POST" and form.is_valid():
        saved = _save_layout(request, form, layout)
        if saved is not None:
            messages.success(request, _("Saved the layout “%(name)s”.") % {"name": saved.name})
            return redirect("campaigns:layout_edit", pk=saved.pk)
        layout.refresh_from_db()
    return render(request, "campaigns/layout_edit.html", {"form": form, "layout": layout})


@customer_page
@require_POST
def layout_delete(request: HttpRequest, pk: int) -> HttpResponse:
    layout = _layout(request, pk)
    try:
        services.delete_layout(layout, by=_user(request))
    except CampaignError as error:
        messages.error(request, str(error))
        return redirect("campaigns:layout_edit", pk=layout.pk)
    messages.success(request, _("Deleted the layout “%(name)s”.") % {"name": layout.name})
    return redirect("campaigns:layouts")


@customer_page
def layout_default(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "campaigns/layout_default.html",
        {"html": rendering.default_layout_html(account_of(request).language)},
    )


@customer_page
@require_POST
def layout_copy_default(request: HttpRequest) -> HttpResponse:
    layout = services.copy_default_layout(account_of(request), by=_user(request))
    messages.success(request, _("Made an editable copy of the default layout."))
    return redirect("campaigns:layout_edit", pk=layout.pk)


SAMPLE_CONTENT = """<h1>A heading</h1>
<p>Hello {{ contact.first_name | default("there") }}, this is how your campaigns look
in this layout: a paragraph with <a href="https://example.com">a link</a>.</p>
<ul><li>A list</li><li>of things</li></ul>"""


def _layout_preview(html: str) -> HttpResponse:
    sample = Campaign(
        name="Layout preview",
        subject="A preview of your layout",
        preheader="The preheader shows here in inboxes",
        from_name="Your organisation",
        from_email="news@example.com",
        content_format=Campaign.Format.HTML,
        body=SAMPLE_CONTENT,
        layout=Layout(html=html),
    )
    try:
        return _sandboxed(rendering.render(sample, rendering.sample_contact()).html)
    except rendering.TemplateError as error:
        return _sandboxed(f"<p>This layout cannot be rendered: {escape(error)}</p>", status=422)


@customer_required
@never_cache
@xframe_options_sameorigin
def layout_preview_html(request: HttpRequest, pk: int) -> HttpResponse:
    return _layout_preview(_layout(request, pk).html)


@customer_required
@never_cache
@xframe_options_sameorigin
def layout_default_preview_html(request: HttpRequest) -> HttpResponse:
    return _layout_preview(rendering.default_layout_html(account_of(request).language))
