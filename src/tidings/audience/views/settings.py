"""The audience settings: the sender of mail to contacts, the double opt-in.

Thin: every page starts from the account `customer_required` hands it (another
account's uuid is a 404) and every write goes through a service."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience import attribute_types, services, setup
from tidings.audience.forms import (
    SettingsForm,
)
from tidings.audience.models import (
    AudienceSettings,
    ContactAttribute,
)
from tidings.audience.services import AudienceError


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
    if request.method == "POST" and request.POST.get("action") == "declare":
        return _declare_attribute(request)
    if request.method == "POST" and form.is_valid():
        try:
            setup.set_editable_attributes(
                account, form.cleaned_data["editable_attributes"].split(",")
            )
            setup.set_contact_sender(account, form.cleaned_data["contact_sender"])
        except AudienceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Saved."))
            return redirect("audience:settings")
    return render(request, "audience/settings.html", _context(request, form))


def _context(request: HttpRequest, form: SettingsForm, **extra: object) -> dict[str, object]:
    return {
        "form": form,
        "declared": ContactAttribute.objects.filter(account=account_of(request)),
        "kinds": attribute_types.KIND_CHOICES,
        **extra,
    }


def _declare_attribute(request: HttpRequest) -> HttpResponse:
    """Declare an attribute name with its type (one already declared keeps its type)."""
    account = account_of(request)
    key = request.POST.get("key", "").strip()
    kind = request.POST.get("kind", "")
    try:
        services.declare_attributes(account, {key: kind})
    except AudienceError as error:
        form = SettingsForm(
            initial={"editable_attributes": ", ".join(services.editable_attributes(account))}
        )
        context = _context(request, form, declare_error=str(error), key=key)
        return render(request, "audience/settings.html", context, status=400)
    messages.success(
        request,
        _("“%(key)s” is declared as %(kind)s.")
        % {"key": key, "kind": attribute_types.KIND_LABELS[kind]},
    )
    return redirect("audience:settings")
