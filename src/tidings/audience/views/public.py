"""Pages for the customer's contacts, without login: the hosted subscription form, the
double opt-in confirmation, the preference page and the unsubscribe link.

They show the customer's organisation, set no cookie but the CSRF one (the form page
sets none: it is posted from the customer's own site too), and never say whether an
address is on a list.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from tidings.audience import attribute_types, links, mailing_lists, rights, services, signup
from tidings.audience.forms import SubscribeForm, type_of, typed_value
from tidings.audience.models import (
    Contact,
    ContactRequest,
    MailingList,
    Subscription,
    SubscriptionForm,
)
from tidings.audience.services import AudienceError
from tidings.core import headers
from tidings.core.clientip import client_ip

# Notices that two of the pages below each give.
LEFT_EVERYTHING = gettext_lazy("You have left every list. You will get no more mail from us.")
NEW_LINK_SENT = gettext_lazy("A new link is on its way to your mailbox.")


def _invalid(request: HttpRequest, error: Exception, **extra: Any) -> HttpResponse:
    return render(
        request, "audience/public/link_invalid.html", {"error": error, **extra}, status=400
    )


# The hosted form is posted from the customer's own site (the snippet), where no CSRF
# token can exist; the honeypot and the rate limits stand in for it.
# The hosted form's page as shown before anything is typed: the same for every visitor
# of a form (nothing personal, no token, no cookie), kept this long per form and language.
FORM_PAGE_SECONDS = 30


@csrf_exempt
def subscribe(request: HttpRequest, form_uuid: uuid.UUID) -> HttpResponse:
    if request.method != "POST" and (kept := _kept_form_page(request, form_uuid)) is not None:
        return kept
    subscription_form = get_object_or_404(
        SubscriptionForm.objects.select_related("account"), uuid=form_uuid
    )
    offered = signup.public_lists(subscription_form)
    if not offered or not subscription_form.account.may_process:
        # Whose it was is not said: the account may be closed or restricted.
        return render(request, "audience/public/form_closed.html", status=404)
    form = SubscribeForm(request.POST or None)
    chosen = _chosen_lists(request, offered)
    _allow_thank_you_page(request, subscription_form)
    context = {
        "subscription_form": subscription_form,
        "account": subscription_form.account,
        "lists": offered,
        "chosen": {m.pk for m in chosen} if request.method == "POST" else {m.pk for m in offered},
        "form": form,
    }
    if request.method != "POST":
        response = render(request, "audience/public/subscribe.html", context)
        _keep_form_page(request, form_uuid, response)
        return response
    if request.POST.get("website"):
        # A bot: store nothing, and our own page, never a redirect elsewhere.
        return _thanks(request, subscription_form, chosen or offered, bot=True)
    ip = client_ip(request)
    if not signup.allow_signup(ip, chosen or offered):
        return render(request, "audience/public/rate_limited.html", context, status=429)
    if not form.is_valid():
        return render(request, "audience/public/subscribe.html", context, status=400)
    try:
        signup.request_signup(
            subscription_form,
            email=form.cleaned_data["email"],
            name=form.cleaned_data["name"],
            lists=chosen,
            ip=ip,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            offered=offered,
        )
    except AudienceError as error:
        form.add_error("email" if isinstance(error, services.InvalidEmail) else None, str(error))
        return render(request, "audience/public/subscribe.html", context, status=400)
    return _thanks(request, subscription_form, chosen)


def _allow_thank_you_page(request: HttpRequest, subscription_form: SubscriptionForm) -> None:
    """The form's page may be left for the customer's thank-you page after it is posted
    (a browser applies the policy's form-action to that redirect)."""
    try:
        url = mailing_lists.check_thank_you_url(subscription_form.thank_you_url)
    except AudienceError:
        return
    if url:
        parts = urlsplit(url)
        headers.allow(request, "form-action", [f"{parts.scheme}://{parts.netloc}"])


def _form_page_key(form_uuid: uuid.UUID) -> str | None:
    """The kept page's key: in Redis only (a cache in the database is a statement too)."""
    if not settings.REDIS_URL:
        return None
    return f"tidings:form-page:{form_uuid.hex}:{get_language()}"


def _kept_form_page(request: HttpRequest, form_uuid: uuid.UUID) -> HttpResponse | None:
    key = _form_page_key(form_uuid)
    kept = cache.get(key) if key else None
    if kept is None:
        return None
    content, form_action = kept
    headers.allow(request, "form-action", form_action)
    return HttpResponse(content, content_type="text/html; charset=utf-8")


def _keep_form_page(request: HttpRequest, form_uuid: uuid.UUID, response: HttpResponse) -> None:
    """The page just rendered, and the policy's sources it added, for the next visitors."""
    key = _form_page_key(form_uuid)
    if key and response.status_code == 200:
        form_action = headers.allowed(request, "form-action")
        cache.set(key, (response.content, form_action), FORM_PAGE_SECONDS)


def _chosen_lists(request: HttpRequest, offered: list[MailingList]) -> list[MailingList]:
    if request.method != "POST":
        return []
    if len(offered) == 1 and "l" not in request.POST:
        return offered
    wanted = set()
    for value in request.POST.getlist("l"):
        try:
            wanted.add(uuid.UUID(value))
        except ValueError:
            continue
    return [m for m in offered if m.uuid in wanted]


def _thanks(
    request: HttpRequest,
    subscription_form: SubscriptionForm,
    chosen: list[MailingList],
    *,
    bot: bool = False,
) -> HttpResponse:
    """The same page for everyone who submitted the form: it depends on the lists' opt-in,
    never on whether the address was known. A person goes to the customer's own thank-you
    page if they saved one (checked again: it may predate the rule); a bot never does."""
    saved = subscription_form.thank_you_url
    if saved and not bot:
        try:
            return HttpResponseRedirect(mailing_lists.check_thank_you_url(saved))
        except AudienceError:
            pass
    double = any(m.optin == MailingList.OptIn.DOUBLE for m in chosen)
    return render(
        request,
        "audience/public/thanks.html",
        {"account": subscription_form.account, "lists": chosen, "double": double},
    )


@never_cache
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST confirms: mail scanners that open every link in a mail
    must not be able to subscribe anyone."""
    try:
        opened = links.open_confirmation(token)
    except links.InvalidLink as error:
        return _invalid(request, error)
    context = {"account": opened.contact.account, "lists": opened.mailing_lists}
    if request.method != "POST":
        return render(request, "audience/public/confirm.html", context)
    try:
        opened = signup.confirm_signup(token)
    except links.InvalidLink as error:
        return _invalid(request, error)
    return render(
        request,
        "audience/public/confirmed.html",
        context | {"contact": opened.contact, "preferences": links.preference_url(opened.contact)},
    )


@never_cache
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        opened = links.open_preferences(token)
    except links.InvalidLink as error:
        return _invalid(request, error)
    contact = opened.contact
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if opened.expired:
        return _expired_preferences(request, contact, action)
    notice, errors, status = "", [], 200
    if action == "leave":
        mailing_list = _subscribed_list(contact, request.POST.get("list", ""))
        if mailing_list is not None:
            services.unsubscribe(contact, mailing_list)
            notice = _("You have left “%(name)s”. It takes effect now.") % {
                "name": mailing_list.name
            }
    elif action == "leave_all":
        services.unsubscribe(contact)
        notice = str(LEFT_EVERYTHING)
    elif action == "save":
        errors = _save_preferences(request, contact)
        if not errors:
            notice = _("Your details are saved.")
    elif action == "request":
        notice, errors, status = _send_request(request, contact)
    if action:
        # What the action changed (a plain view reads nothing twice).
        contact.refresh_from_db()
    return render(
        request,
        "audience/public/preferences.html",
        _preference_context(contact, notice=notice, errors=errors, token=token),
        status=status if status != 200 else (400 if errors else 200),
    )


def _send_request(request: HttpRequest, contact: Contact) -> tuple[str, list[str], int]:
    """The contact's request to the customer: a notice, errors, and the status code."""
    try:
        made, new = rights.request_from_contact(
            contact,
            kind=request.POST.get("kind", ""),
            details=request.POST.get("details", ""),
            ip=client_ip(request),
        )
    except rights.TooManyRequests as error:
        return "", [str(error)], 429
    except rights.RequestError as error:
        return "", [str(error)], 400
    if new:
        notice = _(
            "%(account)s has your request (%(kind)s) and must answer by %(due)s; the answer "
            "comes to %(email)s."
        ) % {
            "account": contact.account.name,
            "kind": made.get_kind_display(),
            "due": _day(made.due_at),
            "email": contact.email,
        }
    else:
        notice = _(
            "You already asked for this on %(received)s: the request is open and must be "
            "answered by %(due)s."
        ) % {"received": _day(made.received_at), "due": _day(made.due_at)}
    return notice, [], 200


def _day(moment: datetime) -> str:
    """A day as the reader reads it, in their language (as the page's list of requests)."""
    return date_format(timezone.localtime(moment), "j F Y")


def _opened_fresh(token: str) -> Contact:
    """The contact of a preference link that is authentic and not expired, else 404."""
    try:
        opened = links.open_preferences(token)
    except links.InvalidLink:
        raise Http404("Invalid link") from None
    if opened.expired:
        raise Http404("Expired link")
    return opened.contact


@never_cache
def my_data(request: HttpRequest, token: str) -> HttpResponse:
    """Everything the customer holds on the contact (GDPR art. 15)."""
    try:
        contact = _opened_fresh(token)
    except Http404:
        return _invalid(request, links.InvalidLink(_("This link is not valid or has expired.")))
    return render(
        request,
        "audience/public/my_data.html",
        {"account": contact.account, "contact": contact, "token": token,
         "sections": rights.contact_data(contact)},
    )  # fmt: skip


@never_cache
def my_data_download(request: HttpRequest, token: str, fmt: str) -> HttpResponse:
    """The same data as a CSV or XLSX file."""
    if fmt not in rights.EXPORT_FORMATS:
        raise Http404("Unknown format")
    contact = _opened_fresh(token)
    content_type, extension = rights.EXPORT_FORMATS[fmt]
    response = HttpResponse(rights.export_contact_data(contact, fmt), content_type=content_type)
    name = f"my-data-{contact.account.name}"[:60]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    response["Content-Disposition"] = f'attachment; filename="{safe}.{extension}"'
    response["Cache-Control"] = "no-store"
    return response


def _subscribed_list(contact: Contact, value: str) -> MailingList | None:
    try:
        key = uuid.UUID(value)
    except ValueError:
        return None
    return MailingList.objects.filter(account_id=contact.account_id, uuid=key).first()


def _editable_rows(contact: Contact) -> list[dict[str, str]]:
    rows = []
    editable = services.editable_attributes(contact.account)
    # Read only where the contact may edit attributes (every mail links to this page).
    declared = attribute_types.types_of(contact.account_id) if editable else {}
    for key in editable:
        value = contact.attributes.get(key)
        kind = declared.get(key) or (type_of(value) if value is not None else "text")
        rows.append({"key": key, "type": kind, "value": _shown(value)})
    return rows


def _shown(value: Any) -> str:
    """An attribute as its field shows it, to be sent back as it is (a 0 stays 0)."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return "" if value is None else str(value)


def _save_preferences(request: HttpRequest, contact: Contact) -> list[str]:
    errors = []
    attributes: dict[str, Any] = {}
    for row in _editable_rows(contact):
        text = request.POST.get(f"attr:{row['key']}", "")
        if not text.strip():
            attributes[row["key"]] = None
            continue
        try:
            attributes[row["key"]] = typed_value(row["type"], text)
        except ValueError as error:
            errors.append(f"{row['key']}: {error}")
    if errors:
        return errors
    try:
        services.set_preferences(
            contact,
            name=request.POST.get("name", ""),
            attributes=attributes,
            allow_tracking=request.POST.get("allow_tracking") == "on",
            allow_profiling=request.POST.get("allow_profiling") == "on",
        )
    except AudienceError as error:
        return [str(error)]
    return []


def _preference_context(contact: Contact, **extra: Any) -> dict[str, Any]:
    subscriptions = (
        contact.subscriptions.select_related("mailing_list")
        .exclude(status=Subscription.Status.UNSUBSCRIBED)
        .order_by("mailing_list__name")
    )
    return {
        "account": contact.account,
        "contact": contact,
        "subscriptions": subscriptions,
        "left_everything": contact.status == Contact.Status.UNSUBSCRIBED,
        "rows": _editable_rows(contact),
        "request_kinds": ContactRequest.Kind.choices,
        "open_requests": contact.requests.filter(status=ContactRequest.Status.OPEN),
        **extra,
    }


def _expired_preferences(request: HttpRequest, contact: Contact, action: str) -> HttpResponse:
    """An old but authentic link: leaving still works (P21); editing needs a fresh link,
    which goes to the contact's own address."""
    notice = ""
    if action == "leave_all":
        services.unsubscribe(contact)
        notice = str(LEFT_EVERYTHING)
    elif action == "send_link":
        signup.send_preference_link(contact)
        notice = str(NEW_LINK_SENT)
    return render(
        request,
        "audience/public/preferences_expired.html",
        {"account": contact.account, "notice": notice},
    )


# Mail providers POST to the List-Unsubscribe address without any cookie (RFC 8058): the
# signed token is the authority here, not a CSRF token.
@csrf_exempt
@never_cache
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        opened = links.open_unsubscribe(token)
    except links.InvalidLink as error:
        return _invalid(request, error)
    contact = opened.contact
    mailing_list = opened.mailing_lists[0] if opened.mailing_lists else None
    context = {
        "account": contact.account,
        "mailing_list": mailing_list,
        # An old link leaves as well as a new one, but leads to the contact's data (a
        # fresh preference link) only within the preference link's age.
        "preferences": None if opened.expired else links.preference_url(contact),
        "notice": "",
    }
    if request.method != "POST":
        return render(request, "audience/public/unsubscribe.html", context)
    if opened.expired and request.POST.get("action") == "send_link":
        signup.send_preference_link(contact)
        context["notice"] = str(NEW_LINK_SENT)
        return render(request, "audience/public/unsubscribe.html", context)
    # Anything else posted here (RFC 8058's "List-Unsubscribe=One-Click") leaves.
    services.unsubscribe(contact, mailing_list)
    return render(request, "audience/public/left.html", context)
