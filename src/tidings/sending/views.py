"""Sending pages: send, schedule, pause, resume, cancel, progress, report; the sending
settings; and the public endpoints in mail (one-click unsubscribe, opens, clicks) and
the public archive. Thin: engine and services do the work."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from typing import Any
from uuid import UUID

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.conf import settings
from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import Account, User
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError
from tidings.campaigns.rendering import render as render_campaign
from tidings.core import ratelimit
from tidings.sending import (
    bounces,
    checklist,
    controls,
    domains,
    engine,
    lifecycle,
    services,
    tokens,
    tracking,
)
from tidings.sending.forms import (
    DomainForm,
    PostalAddressForm,
    RelayForm,
    ScheduleForm,
    TrackingForm,
)
from tidings.sending.models import Relay, SendingDomain
from tidings.sending.senders import operator_address

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise Http404("No account")
    return user


def _campaign(request: HttpRequest, uuid: UUID) -> Campaign:
    return get_object_or_404(Campaign, account=account_of(request), uuid=uuid)


# Campaign sending ----------------------------------------------------------------------------

ACTIONS = {
    "pause": lifecycle.pause_campaign,
    "resume": lifecycle.resume_campaign,
    "cancel": lifecycle.cancel_campaign,
    "unschedule": lifecycle.unschedule_campaign,
    "resend_unknown": lifecycle.resend_unknown,
}
DONE = {
    "send": gettext_lazy("Sending has started."),
    "pause": gettext_lazy("Paused: nothing more goes out until you resume."),
    "resume": gettext_lazy("Sending again."),
    "cancel": gettext_lazy("Cancelled: nobody else receives this campaign."),
    "unschedule": gettext_lazy("No longer scheduled: the campaign is a draft again."),
    "schedule": gettext_lazy("Scheduled."),
    "resend_unknown": gettext_lazy("The messages of unknown outcome are queued again."),
    "score_spam": gettext_lazy(
        "SpamAssassin is scoring the message: its score shows here when it is done."
    ),
}


def _back(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Back to the page the buttons were on (the campaign page or the send page)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("sending:send", uuid=campaign.uuid)


def _confirmed(request: HttpRequest) -> int | None:
    """The number of recipients the customer typed to confirm a large send ("5,000" and
    "5 000" are 5000); None when there is none, which a large send refuses."""
    typed = "".join(request.POST.get("confirm_recipients", "").split())
    digits = re.sub(r"[,.'\u2019]", "", typed)
    return int(digits) if digits.isdigit() and len(digits) <= 12 else None


@customer_required
def send_page(request: HttpRequest, uuid: UUID) -> HttpResponse:
    campaign = _campaign(request, uuid)
    schedule = ScheduleForm(request.POST) if request.POST.get("action") == "schedule" else None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "schedule":
                if schedule is None or not schedule.is_valid():
                    raise lifecycle.SendingError("Give a date, a time and a time zone.")
                when = schedule.cleaned_data["when"].replace(tzinfo=None)
                aware = timezone.make_aware(when, schedule.cleaned_data["timezone"])
                lifecycle.schedule_campaign(
                    campaign, aware, confirmed_recipients=_confirmed(request)
                )
            elif action == "send":
                lifecycle.start_campaign(campaign, confirmed_recipients=_confirmed(request))
            elif action == "score_spam":
                checklist.request_spam_score(campaign)
            elif action in ACTIONS:
                ACTIONS[action](campaign)
            else:
                raise lifecycle.SendingError("Unknown action.")
        except lifecycle.SendingError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, DONE[action])
            return _back(request, campaign)
    context = controls.context_for(campaign, user=request.user, schedule=schedule)
    return render(
        request, "sending/send.html", {**context, "back": request.path, "with_test": True}
    )


@customer_required
@never_cache
def spam_json(request: HttpRequest, uuid: UUID) -> JsonResponse:
    """The checklist's SpamAssassin line, scored in a worker job (queued by the first
    ask): the send page asks again until it is no longer pending."""
    check = checklist.request_spam_score(_campaign(request, uuid))
    return JsonResponse(
        {
            "state": check.state,
            "state_label": str(checklist.STATE_LABELS[check.state]),
            "detail": check.detail,
            "hint": check.hint,
            "fix_url": check.fix_url,
        }
    )


@customer_required
@never_cache
def progress_json(request: HttpRequest, uuid: UUID) -> JsonResponse:
    return JsonResponse(engine.progress(_campaign(request, uuid)))


# Sending settings ----------------------------------------------------------------------------


@customer_required
def settings_page(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    current = services.settings_of(account)
    relay_form = RelayForm(prefix="relay")
    domain_form = DomainForm(prefix="domain")
    tracking_form = TrackingForm(instance=current, prefix="tracking")
    address_form = PostalAddressForm(initial={"postal_address": current.postal_address})
    if request.method == "POST":
        form_name = request.POST.get("form")
        try:
            if form_name == "relay":
                relay_form = RelayForm(
                    request.POST, prefix="relay", instance=Relay(account=account)
                )
                if relay_form.is_valid():
                    services.save_relay(relay_form.save(commit=False))
                    messages.success(request, _("Relay added."))
                    return redirect("sending:settings")
            elif form_name == "domain":
                domain_form = DomainForm(request.POST, prefix="domain")
                if domain_form.is_valid():
                    services.add_sending_domain(account, **domain_form.cleaned_data)
                    messages.success(
                        request, _("Domain added: publish both DNS records below, then check it.")
                    )
                    return redirect("sending:settings")
            elif form_name == "address":
                address_form = PostalAddressForm(request.POST)
                if address_form.is_valid():
                    services.set_postal_address(
                        account, address_form.cleaned_data["postal_address"], by=_user(request)
                    )
                    messages.success(request, _("Postal address saved."))
                    return redirect("sending:settings")
            elif form_name == "tracking":
                tracking_form = TrackingForm(request.POST, prefix="tracking", instance=current)
                if tracking_form.is_valid():
                    services.set_tracking(
                        account,
                        tracking_form.cleaned_data["tracking"],
                        unsubscribe_mailto=tracking_form.cleaned_data["unsubscribe_mailto"],
                    )
                    messages.success(request, _("Saved."))
                    return redirect("sending:settings")
        except services.SettingsError as error:
            messages.error(request, str(error))
    context = {
        "relays": Relay.objects.filter(account=account),
        "domains": SendingDomain.objects.filter(account=account),
        "relay_form": relay_form,
        "domain_form": domain_form,
        "tracking_form": tracking_form,
        "address_form": address_form,
        "operator_from": operator_address()[1],
    }
    return render(request, "sending/settings.html", context)


@customer_required
@require_POST
def remove_relay(request: HttpRequest, pk: int) -> HttpResponse:
    services.remove_relay(get_object_or_404(Relay, account=account_of(request), pk=pk))
    messages.success(request, _("Relay removed."))
    return redirect("sending:settings")


@customer_required
@require_POST
def remove_domain(request: HttpRequest, pk: int) -> HttpResponse:
    services.remove_sending_domain(
        get_object_or_404(SendingDomain, account=account_of(request), pk=pk)
    )
    messages.success(request, _("Domain removed."))
    return redirect("sending:settings")


@customer_required
@require_POST
def check_domain(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Check now": read the domain's records from DNS at once."""
    domain = get_object_or_404(SendingDomain, account=account_of(request), pk=pk)
    if not ratelimit.allow("domain-check", str(domain.account_id), limit=20, seconds=600):
        messages.error(request, _("Too many checks: wait a few minutes, then try again."))
        return redirect("sending:settings")
    domains.check_domain(domain)
    if domain.proven_at is not None:
        messages.success(
            request,
            _("%(domain)s is proven yours: mail from it is sent as it.")
            % {"domain": domain.domain},
        )
    elif domain.dns_status.get("error"):
        messages.error(request, domain.dns_status["error"])
    else:
        messages.error(
            request,
            _("%(domain)s is not proven yet: publish both records below, then check again.")
            % {"domain": domain.domain},
        )
    return redirect("sending:settings")


# Public: one-click unsubscribe, opens, clicks ------------------------------------------------


def _mask(address: str) -> str:
    local, _at, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


@csrf_exempt  # a mail provider's one-click POST carries no CSRF token (RFC 8058)
@never_cache
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (link scanners must not unsubscribe anyone); POST, including
    the provider's `List-Unsubscribe=One-Click`, unsubscribes at once, no login."""
    try:
        data = tokens.read_unsubscribe_token(token)
    except tokens.InvalidToken:
        return render(request, "sending/unsubscribe_invalid.html", status=400)
    # Only what the pages and the unsubscription use: a wide row costs the link more to
    # read than the unsubscription costs to write (bench/run.py web).
    contact = (
        Contact.objects.filter(uuid=data.contact_uuid)
        .select_related("account")
        .only("status", "email", "account__name")
        .first()
    )
    # The contact's pages (audience/public/base.html): the sender's name, not the
    # platform's site, its menus or its cookie banner.
    account = contact.account if contact is not None else None
    if request.method == "POST":
        if contact is not None:
            was_active = contact.status == Contact.Status.ACTIVE
            # In effect (committed) before the answer: never queued.
            audience.unsubscribe(contact)
            if was_active and data.campaign_id is not None:
                tracking.note(None, "unsubscribe", campaign_id=data.campaign_id)
        return render(request, "sending/unsubscribed.html", {"account": account})
    if request.method != "GET":
        return HttpResponse(status=405)
    masked = _mask(contact.email) if contact is not None else ""
    return render(request, "sending/unsubscribe.html", {"masked": masked, "account": account})


@never_cache
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    # The image is served whatever the token: a broken pixel helps nobody.
    with contextlib.suppress(tokens.InvalidToken):
        tracking.note(tokens.read_open_token(token), "open")
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Redirect to a link Tidings itself put in a message (the token is signed: no open
    redirect) while it is bound to its campaign (`tracking.click_destination`), counting
    the click."""
    try:
        data = tokens.read_click_token(token)
    except tokens.InvalidToken:
        return render(request, "sending/link_invalid.html", status=400)
    destination = tracking.click_destination(data)
    if destination is None:
        return render(request, "sending/link_expired.html", status=410)
    tracking.note(data, "click")
    return HttpResponseRedirect(destination)


# Public archive ------------------------------------------------------------------------------


ARCHIVE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: http: data:; font-src 'self' https: data:; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _archived(account_id: int) -> Any:
    return Campaign.objects.filter(
        account_id=account_id,
        account__status=Account.Status.ACTIVE,
        archived=True,
        status=Campaign.Status.SENT,
    ).order_by("-finished_at")


def archive(request: HttpRequest, account_id: int) -> HttpResponse:
    campaigns = list(_archived(account_id))
    if not campaigns:
        raise Http404("No archive")
    return render(
        request, "sending/archive.html", {"campaigns": campaigns, "account_id": account_id}
    )


def archived_campaign(request: HttpRequest, account_id: int, uuid: UUID) -> HttpResponse:
    campaign = get_object_or_404(_archived(account_id), uuid=uuid)
    # A neutral sample contact: the archive never shows anyone's personal data.
    sample = Contact(
        account=campaign.account, email="subscriber@example.com", name="", attributes={}
    )
    try:
        rendered = render_campaign(campaign, sample)
    except TemplateError:
        raise Http404("Cannot be shown") from None
    response = render(
        request,
        "sending/archived_campaign.html",
        {"campaign": campaign, "rendered": rendered, "account_id": account_id},
    )
    # The mail is shown in a sandboxed srcdoc frame, which inherits the page's policy:
    # its inline styles and remote images are allowed, scripts stay Tidings's own only
    # (and the sandbox runs none in the frame).
    response["Content-Security-Policy"] = ARCHIVE_CSP
    return response


# Provider webhooks: served only when TIDINGS_WEBHOOK_SECRET is set -------------------------


def _guarded(view: Any, *required: str) -> Any:
    """The provider's view, served only when its secrets are configured: an empty
    secret would let anyone sign or authenticate a forged event."""
    inner = csrf_exempt(view.as_view())

    @csrf_exempt
    def guarded(request: HttpRequest) -> HttpResponse:
        if not all(settings.ANYMAIL.get(name) for name in ("WEBHOOK_SECRET", *required)):
            raise Http404("Webhooks are off")
        return inner(request)

    return guarded


class FreshMailgunWebhookView(MailgunTrackingWebhookView):
    """Anymail's Mailgun view, which checks the signature, and then refuses a signature
    made long ago or whose one-time token was seen before (a replayed request)."""

    def validate_request(self, request: HttpRequest) -> None:
        super().validate_request(request)
        if request.content_type == "application/json":
            block = json.loads(request.body.decode("utf-8"))["signature"]
            timestamp, token = block["timestamp"], block["token"]
        else:
            timestamp, token = request.POST["timestamp"], request.POST["token"]
        refused = bounces.fresh_webhook_signature("mailgun", str(timestamp), str(token))
        if refused:
            raise AnymailWebhookValidationFailure(f"Mailgun webhook refused: {refused}")


postmark_webhook = _guarded(PostmarkTrackingWebhookView)
mailgun_webhook = _guarded(FreshMailgunWebhookView, "MAILGUN_WEBHOOK_SIGNING_KEY")
