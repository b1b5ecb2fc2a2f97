"""The customer's mailing lists: the list of lists with their counts, editing, deleting.

Thin: every page starts from the account `customer_required` hands it (another
account's uuid is a 404) and every write goes through a service."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience import mailing_lists
from tidings.audience.forms import (
    ListForm,
)
from tidings.audience.models import (
    MailingList,
    Subscription,
)
from tidings.audience.selectors import list_counts
from tidings.audience.services import AudienceError


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
            saved = mailing_lists.save_list(account, mailing_list=mailing_list, **form.cleaned_data)
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The list “%(name)s” is saved.") % {"name": saved.name})
            return redirect("audience:lists")
    return render(request, "audience/list_form.html", {"form": form, "mailing_list": mailing_list})


@customer_required
def list_delete(request: HttpRequest, list_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    mailing_list = get_object_or_404(MailingList, account=account, uuid=list_uuid)
    if request.method == "POST":
        mailing_lists.delete_list(mailing_list)
        messages.success(
            request, _("The list “%(name)s” is deleted.") % {"name": mailing_list.name}
        )
        return redirect("audience:lists")
    counts = list_counts(account).get(mailing_list.pk, {})
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": _("the list “%(name)s”") % {"name": mailing_list.name},
            "consequence": _(
                "Its %(count)s subscriptions are deleted; the contacts stay in your audience."
            )
            % {"count": number_format(sum(counts.values()), force_grouping=True)},
            "back": reverse("audience:lists"),
        },
    )
