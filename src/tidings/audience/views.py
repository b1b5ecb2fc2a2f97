"""The customer's audience pages: lists, contacts, segments, subscription forms.

Thin: every page starts from the logged-in user's account (another account's uuid is a
404) and every write goes through a service.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import Account
from tidings.audience import bulk, restriction, segments, services
from tidings.audience.forms import (
    ATTRIBUTE_TYPES,
    FIELD_CHOICES,
    OP_CHOICES,
    ListForm,
    NewContactForm,
    SettingsForm,
    SubscriptionFormForm,
    attribute_rows,
    attributes_from_post,
    rule_rows,
    rules_from_post,
    tags_from_text,
)
from tidings.audience.models import (
    AudienceSettings,
    ConsentProof,
    Contact,
    MailingList,
    Segment,
    Subscription,
    SubscriptionForm,
)
from tidings.audience.selectors import ContactSearch, SearchError, list_counts, page_of
from tidings.audience.services import AudienceError
from tidings.audience.signup import public_lists


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- lists ------------------------------------------------------------------------


@customer_required
def lists(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    counts = list_counts(account)
    rows = [
        (m, counts.get(m.pk, {s: 0 for s in Subscription.Status.values}))
        for m in MailingList.objects.filter(account=account)
    ]
    return render(request, "audience/lists.html", {"rows": rows})


@customer_required
def list_edit(request: HttpRequest, list_uuid: uuid.UUID | None = None) -> HttpResponse:
    account = account_of(request)
    mailing_list = (
        get_object_or_404(MailingList, account=account, uuid=list_uuid) if list_uuid else None
    )
    initial: dict[str, str] = {
        "visibility": MailingList.Visibility.PRIVATE,
        "optin": MailingList.OptIn.DOUBLE,
    }
    if mailing_list is not None:
        initial = {
            "name": mailing_list.name,
            "description": mailing_list.description,
            "visibility": mailing_list.visibility,
            "optin": mailing_list.optin,
        }
    form = ListForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_list(account, mailing_list=mailing_list, **form.cleaned_data)
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"The list “{saved.name}” is saved.")
            return redirect("audience:lists")
    return render(request, "audience/list_form.html", {"form": form, "mailing_list": mailing_list})


@customer_required
def list_delete(request: HttpRequest, list_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    mailing_list = get_object_or_404(MailingList, account=account, uuid=list_uuid)
    if request.method == "POST":
        services.delete_list(mailing_list)
        messages.success(request, f"The list “{mailing_list.name}” is deleted.")
        return redirect("audience:lists")
    counts = list_counts(account).get(mailing_list.pk, {})
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": f"the list “{mailing_list.name}”",
            "consequence": f"Its {sum(counts.values()):,} subscriptions are deleted; the "
            "contacts stay in your audience.",
            "back": reverse("audience:lists"),
        },
    )


# --- contacts ---------------------------------------------------------------------


@customer_required
def contacts(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    search = ContactSearch.from_dict(request.GET)
    error = ""
    try:
        found = search.contacts(account)
        page = page_of(
            found,
            account,
            after=_int(request.GET.get("after")),
            before=_int(request.GET.get("before")),
            first=_int(request.GET.get("n")) or 1,
        )
    except SearchError as problem:
        error, page = str(problem), None
    all_lists = list(MailingList.objects.filter(account=account))
    return render(
        request,
        "audience/contacts.html",
        {
            "search": search,
            "page": page,
            "error": error,
            "lists": all_lists,
            "statuses": Contact.Status.choices,
            "actions": bulk.ACTIONS.items(),
            "page_size": 50,
        },
    )


@customer_required
@require_POST
def contacts_bulk(request: HttpRequest) -> HttpResponse:
    """A bulk action on the ticked contacts, or on every contact of the search."""
    account = account_of(request)
    action = request.POST.get("action", "")
    argument = request.POST.get("tag", "") if action == "tag" else request.POST.get("list", "")
    search = ContactSearch.from_dict(
        {k[2:]: v for k, v in request.POST.items() if k.startswith("s_")}
    )
    back = reverse("audience:contacts") + (
        "?" + search.querystring() if not search.is_empty else ""
    )
    if action not in bulk.ACTIONS:
        messages.error(request, "Choose an action.")
        return redirect(back)
    try:
        if request.POST.get("scope") == "all":
            found = search.contacts(account)
            total = found.count()
            # Checked now, so a wrong tag or list is told now, not lost in a job.
            bulk.apply_later(account, search.as_dict(), action, argument)
            messages.success(
                request,
                f"“{bulk.ACTIONS[action]}” is applied to all {total:,} matching contacts. "
                "A large selection takes a moment: reload to see the result.",
            )
        else:
            chosen = []
            for value in request.POST.getlist("contact"):
                try:
                    chosen.append(uuid.UUID(value))
                except ValueError:
                    continue
            if not chosen:
                messages.error(request, "Tick some contacts, or choose all that match.")
                return redirect(back)
            selected = Contact.objects.filter(account=account, uuid__in=chosen[:1000])
            result = bulk.apply(account, selected, action, argument)
            messages.success(request, f"“{bulk.ACTIONS[action]}”: {result.changed:,} changed.")
    except (AudienceError, SearchError) as error:
        messages.error(request, str(error))
    return redirect(back)


@customer_required
def contact_new(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    form = NewContactForm(account, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        basis_at = (
            timezone.make_aware(datetime.combine(data["basis_at"], time(12)))
            if data["basis_at"]
            else None
        )
        if Contact.objects.filter(
            account=account, email=_normalised_or_raw(data["email"])
        ).exists():
            form.add_error("email", "This address is already in your audience.")
        else:
            try:
                contact = services.add_contact(
                    account,
                    data["email"],
                    name=data["name"],
                    lists=data["lists"],
                    legal_basis=data["legal_basis"],
                    basis_at=basis_at,
                    source=Contact.Source.MANUAL,
                    proof={
                        "method": ConsentProof.Method.MANUAL,
                        "given_at": basis_at or timezone.now(),
                        "note": data["note"] or "added by hand by the customer",
                    },
                )
            except AudienceError as error:
                form.add_error("email", str(error))
            else:
                messages.success(request, f"{contact.email} is added.")
                return redirect("audience:contact", contact_uuid=contact.uuid)
    return render(request, "audience/contact_new.html", {"form": form})


def _normalised_or_raw(email: str) -> str:
    try:
        return services.normalise_email(email)
    except AudienceError:
        return email


@customer_required
def contact_detail(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    errors: list[str] = []
    rows = attribute_rows(contact.attributes)
    tags_text = ", ".join(contact.tags)
    name = contact.name
    if request.method == "POST":
        attributes, errors, rows = attributes_from_post(request.POST)
        tags_text = request.POST.get("tags", "")
        name = request.POST.get("name", "")
        if not errors:
            try:
                with transaction.atomic():
                    services.update_contact(
                        contact,
                        name=name,
                        attributes=attributes,
                        tags=tags_from_text(tags_text),
                        status=request.POST.get("status") or None,
                    )
            except AudienceError as error:
                errors.append(str(error))
                contact.refresh_from_db()
            else:
                messages.success(request, "Saved.")
                return redirect("audience:contact", contact_uuid=contact.uuid)
        rows += [{"key": "", "type": "text", "value": ""}]
    subscriptions = contact.subscriptions.select_related("mailing_list").order_by(
        "mailing_list__name"
    )
    on_lists = {s.mailing_list_id for s in subscriptions}
    statuses = [
        (s, label)
        for s, label in Contact.Status.choices
        if s in services.CUSTOMER_STATUSES or s == contact.status
    ]
    return render(
        request,
        "audience/contact.html",
        {
            "contact": contact,
            "name": name,
            "errors": errors,
            "rows": rows,
            "types": ATTRIBUTE_TYPES,
            "tags_text": tags_text,
            "statuses": statuses,
            "subscriptions": subscriptions,
            "other_lists": MailingList.objects.filter(account=account).exclude(pk__in=on_lists),
            "notice_days": restriction.notice_days(),
            "proofs": contact.consent_proofs.select_related("mailing_list", "form").order_by(
                "-given_at"
            ),
        },
        status=400 if errors else 200,
    )


@customer_required
@require_POST
def contact_lists(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    """Add the contact to a list, or take them off one."""
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    try:
        list_uuid = uuid.UUID(request.POST.get("list", ""))
    except ValueError:
        messages.error(request, "Choose a list.")
        return redirect("audience:contact", contact_uuid=contact.uuid)
    mailing_list = get_object_or_404(MailingList, account=account, uuid=list_uuid)
    try:
        if request.POST.get("action") == "remove":
            services.remove_from_list(contact, mailing_list)
            messages.success(request, f"Taken off “{mailing_list.name}”.")
        else:
            services.add_to_list(contact, mailing_list)
            messages.success(request, f"Added to “{mailing_list.name}”.")
    except AudienceError as error:
        messages.error(request, str(error))
    return redirect("audience:contact", contact_uuid=contact.uuid)


@customer_required
@require_POST
def contact_restriction(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    """Restrict processing of a contact's data, announce the end of it, or keep it."""
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    action = request.POST.get("action", "")
    try:
        if action == "restrict":
            restriction.restrict(contact, reason=request.POST.get("reason", ""))
            messages.success(request, "Processing is restricted; the contact has been told.")
        elif action == "lift":
            contact = restriction.announce_lift(contact)
            messages.success(
                request,
                f"The contact has been told; the restriction ends on "
                f"{contact.restriction_lifts_at:%Y-%m-%d}.",
            )
        elif action == "keep":
            restriction.keep(contact)
            messages.success(request, "The restriction stays.")
        else:
            messages.error(request, "Choose what to do.")
    except AudienceError as error:
        messages.error(request, str(error))
    return redirect("audience:contact", contact_uuid=contact.uuid)


@customer_required
@require_POST
def contact_blocklist(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    before = contact.status
    services.blocklist(contact)
    if contact.status == Contact.Status.BLOCKLISTED and before != contact.status:
        messages.success(request, f"{contact.email} is blocklisted: they get no more mail.")
    else:
        messages.info(request, f"{contact.email} receives no mail already.")
    return redirect("audience:contact", contact_uuid=contact.uuid)


@customer_required
def contact_delete(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    if request.method == "POST":
        services.erase_contact(contact)
        messages.success(
            request,
            f"{contact.email} is erased. Only a keyed hash of the address is kept, so they "
            "are not added back without a new consent.",
        )
        return redirect("audience:contacts")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": contact.email,
            "consequence": "The contact, their subscriptions and proofs of consent are "
            "deleted. A keyed hash of the address stays on your suppression list so that "
            "no import adds them back; only a new, confirmed consent does.",
            "back": reverse("audience:contact", args=[contact.uuid]),
        },
    )


# --- segments ---------------------------------------------------------------------


def _list_names(account: Account) -> dict[str, str]:
    return {m.uuid.hex: m.name for m in MailingList.objects.filter(account=account)}


def _rules_with_list_uuids(account: Account, rules: dict[str, Any]) -> dict[str, Any]:
    """The builder lets people type a list's name; the rules store its uuid."""
    by_name = {name.lower(): hex_ for hex_, name in _list_names(account).items()}

    def to_uuid(value: Any) -> Any:
        return by_name.get(value.strip().lower(), value) if isinstance(value, str) else value

    for condition in rules.get("conditions", []):
        if condition.get("field") == "list":
            value = condition.get("value")
            condition["value"] = (
                [to_uuid(v) for v in value] if isinstance(value, list) else to_uuid(value)
            )
        if condition.get("field") == "list_status" and "key" in condition:
            condition["key"] = to_uuid(condition["key"])
    return rules


def _rules_for_display(account: Account, rules: dict[str, Any]) -> dict[str, Any]:
    names = _list_names(account)

    def to_name(value: Any) -> Any:
        return names.get(value, value) if isinstance(value, str) else value

    shown = {"match": rules.get("match", "all"), "conditions": []}
    for c in rules.get("conditions", []):
        c = dict(c)
        if c.get("field") == "list":
            c["value"] = (
                [to_name(v) for v in c["value"]]
                if isinstance(c["value"], list)
                else to_name(c["value"])
            )
        if c.get("field") == "list_status":
            c["key"] = to_name(c.get("key", ""))
        shown["conditions"].append(c)
    return shown


@customer_required
def segment_list(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    return render(
        request,
        "audience/segments.html",
        {"segments": Segment.objects.filter(account=account)},
    )


@customer_required
def segment_edit(request: HttpRequest, segment_uuid: uuid.UUID | None = None) -> HttpResponse:
    account = account_of(request)
    segment = (
        get_object_or_404(Segment, account=account, uuid=segment_uuid) if segment_uuid else None
    )
    name = segment.name if segment else ""
    rules: dict[str, Any] = segment.rules if segment else {"match": "all", "conditions": []}
    shown = _rules_for_display(account, rules)
    error, count = "", None
    status = 200
    if request.method == "POST":
        name = request.POST.get("name", "")
        shown = rules_from_post(request.POST)
        rules = _rules_with_list_uuids(account, rules_from_post(request.POST))
        try:
            if "preview" in request.POST:
                count = segments.size(account, rules)
            else:
                saved = segments.save_segment(account, segment=segment, name=name, rules=rules)
                messages.success(request, f"The segment “{saved.name}” is saved.")
                return redirect("audience:segment", segment_uuid=saved.uuid)
        except AudienceError as problem:
            error, status = str(problem), 400
    elif segment is not None:
        count = segments.size(account, segment.rules or {})
    return render(
        request,
        "audience/segment_form.html",
        {
            "segment": segment,
            "name": name,
            "match": shown.get("match", "all"),
            "rows": rule_rows(shown),
            "fields": FIELD_CHOICES,
            "ops": OP_CHOICES,
            "error": error,
            "count": count,
            "list_names": sorted(_list_names(account).values()),
            "statuses": [*Contact.Status.values, *Subscription.Status.values],
        },
        status=status,
    )


@customer_required
@require_POST
def segment_count(request: HttpRequest) -> JsonResponse:
    """The live size on the segment page: the builder's rows in, a count (or the
    problem) out. Nothing is saved."""
    account = account_of(request)
    rules = _rules_with_list_uuids(account, rules_from_post(request.POST))
    try:
        return JsonResponse({"count": segments.size(account, rules)})
    except AudienceError as error:
        return JsonResponse({"error": str(error)}, status=400)


@customer_required
def segment_delete(request: HttpRequest, segment_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    segment = get_object_or_404(Segment, account=account, uuid=segment_uuid)
    if request.method == "POST":
        segment.delete()
        messages.success(request, f"The segment “{segment.name}” is deleted.")
        return redirect("audience:segments")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": f"the segment “{segment.name}”",
            "consequence": "Only the filter is deleted; no contact changes.",
            "back": reverse("audience:segment", args=[segment.uuid]),
        },
    )


# --- subscription forms -----------------------------------------------------------


@customer_required
def form_list(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    return render(
        request,
        "audience/forms.html",
        {"forms": SubscriptionForm.objects.filter(account=account).prefetch_related("lists")},
    )


@customer_required
def form_edit(request: HttpRequest, form_uuid: uuid.UUID | None = None) -> HttpResponse:
    account = account_of(request)
    subscription_form = (
        get_object_or_404(SubscriptionForm, account=account, uuid=form_uuid) if form_uuid else None
    )
    initial: dict[str, Any] = {
        "consent_text": "I agree to receive these newsletters by email. I can leave at any "
        "time with the link in every mail."
    }
    if subscription_form is not None:
        initial = {
            "name": subscription_form.name,
            "lists": list(subscription_form.lists.all()),
            "consent_text": subscription_form.consent_text,
            "thank_you_url": subscription_form.thank_you_url,
        }
    form = SubscriptionFormForm(account, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_form(account, form=subscription_form, **form.cleaned_data)
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"The form “{saved.name}” is saved.")
            return redirect("audience:form", form_uuid=saved.uuid)
    context: dict[str, Any] = {"form": form, "subscription_form": subscription_form}
    if subscription_form is not None:
        hosted = settings.BASE_URL + reverse("audience:subscribe", args=[subscription_form.uuid])
        context |= {
            "hosted_url": hosted,
            "snippet": _snippet(subscription_form, hosted),
            "offered": public_lists(subscription_form),
        }
    has_public = MailingList.objects.filter(
        account=account, visibility=MailingList.Visibility.PUBLIC
    ).exists()
    context["has_public_lists"] = has_public
    return render(request, "audience/form_edit.html", context)


def _snippet(subscription_form: SubscriptionForm, hosted: str) -> str:
    from django.template.loader import render_to_string

    return render_to_string(
        "audience/snippet.html",
        {"form": subscription_form, "action": hosted, "lists": public_lists(subscription_form)},
    ).strip()


@customer_required
def form_delete(request: HttpRequest, form_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    subscription_form = get_object_or_404(SubscriptionForm, account=account, uuid=form_uuid)
    if request.method == "POST":
        subscription_form.delete()
        messages.success(request, f"The form “{subscription_form.name}” is deleted.")
        return redirect("audience:forms")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": f"the form “{subscription_form.name}”",
            "consequence": "Its page and snippet stop working at once. The subscriptions it "
            "collected, and their proofs of consent, stay.",
            "back": reverse("audience:form", args=[subscription_form.uuid]),
        },
    )


# --- settings ---------------------------------------------------------------------


@customer_required
def audience_settings(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    chosen = AudienceSettings.objects.filter(account=account).values_list(
        "contact_sender", flat=True
    )
    form = SettingsForm(
        request.POST or None,
        initial={
            "editable_attributes": ", ".join(services.editable_attributes(account)),
            "contact_sender": chosen.first() or "",
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.set_editable_attributes(
                account, form.cleaned_data["editable_attributes"].split(",")
            )
            services.set_contact_sender(account, form.cleaned_data["contact_sender"])
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Saved.")
            return redirect("audience:settings")
    return render(request, "audience/settings.html", {"form": form})
