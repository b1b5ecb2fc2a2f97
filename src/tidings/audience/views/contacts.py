"""The customer's contacts: search, bulk actions, a new contact, a contact's page (lists,
restriction, blocklist, erasure).

Thin: every page starts from the account `customer_required` hands it (another
account's uuid is a 404) and every write goes through a service."""

from __future__ import annotations

import uuid
from datetime import datetime, time

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience import attribute_types, bulk, restriction, services
from tidings.audience.forms import (
    ATTRIBUTE_TYPES,
    NewContactForm,
    attribute_rows,
    attributes_from_post,
    tags_from_text,
)
from tidings.audience.models import (
    ConsentProof,
    Contact,
    MailingList,
)
from tidings.audience.selectors import (
    DEFAULT_SORT,
    ContactSearch,
    SearchError,
    consent_proofs_of,
    contacts_total,
    sort_order,
    sorted_page,
)
from tidings.audience.services import AudienceError
from tidings.audience.timeline import timeline
from tidings.audience.views.common import int_or_none


@customer_required
def contacts(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    search = ContactSearch.from_dict(request.GET)
    error = ""
    sort, _order = sort_order(request.GET.get("sort", DEFAULT_SORT))
    try:
        found = search.contacts(account)
        page = sorted_page(
            found,
            account,
            total=contacts_total(search, account, found),
            sort=sort,
            number=int_or_none(request.GET.get("page")) or 1,
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
            "sort": sort,
            "columns": _sortable_columns(search, sort),
            # The search and the sort, for the page links ("…&page=N").
            "page_query": _then(search.querystring(sort=sort if sort != DEFAULT_SORT else "")),
        },
    )


def _then(query: str) -> str:
    return f"{query}&" if query else ""


def _sortable_columns(search: ContactSearch, sort: str) -> list[dict[str, str]]:
    """The table's headers: each a link that sorts by it (again: the other way)."""
    columns = []
    for column, label in (
        ("email", _("Email")),
        ("name", _("Name")),
        ("status", _("Status")),
        ("added", _("Added")),
    ):
        current = sort.removeprefix("-") == column
        descending = sort.startswith("-")
        # Newest first is what people expect of "Added"; a name or an address A to Z.
        first = "-added" if column == "added" else column
        target = (column if descending else "-" + column) if current else first
        columns.append(
            {
                "label": str(label),
                "query": search.querystring(sort=target),
                "aria": ("descending" if descending else "ascending") if current else "",
            }
        )
    return columns


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
        messages.error(request, _("Choose an action."))
        return redirect(back)
    try:
        if request.POST.get("scope") == "all":
            found = search.contacts(account)
            total = found.count()
            # Checked now, so a wrong tag or list is told now, not lost in a job.
            bulk.apply_later(account, search.as_dict(), action, argument)
            messages.success(
                request,
                _(
                    "“%(action)s” is applied to all %(total)s matching contacts. "
                    "A large selection takes a moment: reload to see the result."
                )
                % {
                    "action": bulk.ACTIONS[action],
                    "total": number_format(total, force_grouping=True),
                },
            )
        else:
            chosen = []
            for value in request.POST.getlist("contact"):
                try:
                    chosen.append(uuid.UUID(value))
                except ValueError:
                    continue
            if not chosen:
                messages.error(request, _("Tick some contacts, or choose all that match."))
                return redirect(back)
            selected = Contact.objects.filter(account=account, uuid__in=chosen[:1000])
            result = bulk.apply(account, selected, action, argument)
            messages.success(
                request,
                _("“%(ACTIONS)s”: %(changed)s changed.")
                % {
                    "ACTIONS": bulk.ACTIONS[action],
                    "changed": number_format(result.changed, force_grouping=True),
                },
            )
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
            form.add_error("email", _("This address is already in your audience."))
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
                messages.success(request, _("%(email)s is added.") % {"email": contact.email})
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
    rows = attribute_rows(contact.attributes, declared=attribute_types.types_of(account))
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
                messages.success(request, _("Saved."))
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
            "activity": timeline(contact, page=int_or_none(request.GET.get("activity")) or 1),
            "proofs": consent_proofs_of([contact.pk])
            .select_related("mailing_list", "form")
            .order_by("-given_at"),
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
        messages.error(request, _("Choose a list."))
        return redirect("audience:contact", contact_uuid=contact.uuid)
    mailing_list = get_object_or_404(MailingList, account=account, uuid=list_uuid)
    try:
        if request.POST.get("action") == "remove":
            services.remove_from_list(contact, mailing_list)
            messages.success(request, _("Taken off “%(name)s”.") % {"name": mailing_list.name})
        else:
            services.add_to_list(contact, mailing_list)
            messages.success(request, _("Added to “%(name)s”.") % {"name": mailing_list.name})
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
            messages.success(request, _("Processing is restricted; the contact has been told."))
        elif action == "lift":
            contact = restriction.announce_lift(contact)
            assert contact.restriction_lifts_at is not None
            messages.success(
                request,
                _("The contact has been told; the restriction ends on %(date)s.")
                % {"date": date_format(contact.restriction_lifts_at, "DATE_FORMAT")},
            )
        elif action == "keep":
            restriction.keep(contact)
            messages.success(request, _("The restriction stays."))
        else:
            messages.error(request, _("Choose what to do."))
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
        messages.success(
            request,
            _("%(email)s is blocklisted: they get no more mail.") % {"email": contact.email},
        )
    else:
        messages.info(request, _("%(email)s receives no mail already.") % {"email": contact.email})
    return redirect("audience:contact", contact_uuid=contact.uuid)


@customer_required
def contact_delete(request: HttpRequest, contact_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    contact = get_object_or_404(Contact, account=account, uuid=contact_uuid)
    if request.method == "POST":
        services.erase_contact(contact)
        messages.success(
            request,
            _(
                "%(email)s is erased. Only a keyed hash of the address is kept, so they "
                "are not added back without a new consent."
            )
            % {"email": contact.email},
        )
        return redirect("audience:contacts")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": contact.email,
            "consequence": _(
                "The contact, their subscriptions and proofs of consent are "
                "deleted. A keyed hash of the address stays on your suppression list so that "
                "no import adds them back; only a new, confirmed consent does."
            ),
            "back": reverse("audience:contact", args=[contact.uuid]),
        },
    )
