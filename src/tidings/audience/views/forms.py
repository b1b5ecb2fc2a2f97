"""Subscription forms: hosted pages and the snippet to embed them.

Thin: every page starts from the account `customer_required` hands it (another
account's uuid is a 404) and every write goes through a service."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience import mailing_lists
from tidings.audience.forms import (
    SubscriptionFormForm,
)
from tidings.audience.models import (
    MailingList,
    SubscriptionForm,
)
from tidings.audience.services import AudienceError
from tidings.audience.signup import public_lists
from tidings.core import baseurl


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
            saved = mailing_lists.save_form(account, form=subscription_form, **form.cleaned_data)
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The form “%(name)s” is saved.") % {"name": saved.name})
            return redirect("audience:form", form_uuid=saved.uuid)
    context: dict[str, Any] = {"form": form, "subscription_form": subscription_form}
    if subscription_form is not None:
        hosted = baseurl.absolute(reverse("audience:subscribe", args=[subscription_form.uuid]))
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
        messages.success(
            request, _("The form “%(name)s” is deleted.") % {"name": subscription_form.name}
        )
        return redirect("audience:forms")
    return render(
        request,
        "audience/confirm_delete.html",
        {
            "what": _("the form “%(name)s”") % {"name": subscription_form.name},
            "consequence": _(
                "Its page and snippet stop working at once. The subscriptions it "
                "collected, and their proofs of consent, stay."
            ),
            "back": reverse("audience:form", args=[subscription_form.uuid]),
        },
    )
