"""Segments: saved rules over the contacts, edited with a live count.

Thin: every page starts from the account `customer_required` hands it (another
account's uuid is a 404) and every write goes through a service."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import Account
from tidings.audience import attribute_types, segments
from tidings.audience.forms import (
    FIELD_CHOICES,
    OP_CHOICES,
    rule_rows,
    rules_from_post,
)
from tidings.audience.models import (
    Contact,
    MailingList,
    Segment,
    Subscription,
)
from tidings.audience.services import AudienceError


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
                messages.success(
                    request, _("The segment “%(name)s” is saved.") % {"name": saved.name}
                )
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
            # The builder offers, for a declared attribute, the operators of its type.
            "attribute_types": attribute_types.types_of(account),
            "ops_by_kind": attribute_types.OPS_BY_KIND,
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
        messages.success(request, _("The segment “%(name)s” is deleted.") % {"name": segment.name})
        return redirect("audience:segments")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": _("the segment “%(name)s”") % {"name": segment.name},
            "consequence": _("Only the filter is deleted; no contact changes."),
            "back": reverse("audience:segment", args=[segment.uuid]),
        },
    )
