"""Product updates from the staff console (P5): written, previewed with the number of
customers who will get them, and sent through the one pipeline to those who have not
opted out. Administrators only; every send is audited (sending.product_updates)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tidings.accounts.models import User
from tidings.sending import product_updates
from tidings.sending.models import ProductUpdate
from tidings.staff.admin_site import site

PERMISSION = "sending.add_productupdate"


class UpdateForm(forms.Form):
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=300)
    body = forms.CharField(
        label=gettext_lazy("Text"),
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=gettext_lazy("Plain text. The footer with the opt-out link is added."),
    )


def product_updates_page(request: HttpRequest) -> HttpResponse:
    staff = request.user
    if not isinstance(staff, User) or not staff.has_perm(PERMISSION):
        raise PermissionDenied
    form = UpdateForm(request.POST or None)
    shown: tuple[str, str] | None = None
    action = request.POST.get("action", "preview")
    if request.method == "POST" and form.is_valid():
        subject, body = form.cleaned_data["subject"], form.cleaned_data["body"]
        try:
            if action == "send":
                update = product_updates.send_product_update(subject, body, by=staff)
                sent = product_updates.sent_count(update)
                messages.success(
                    request,
                    ngettext(
                        "The update is on its way to %(n)d customer.",
                        "The update is on its way to %(n)d customers.",
                        sent,
                    )
                    % {"n": sent},
                )
                return redirect("staff_product_updates")
            shown = product_updates.preview(subject, body)
        except product_updates.UpdateRejected as error:
            form.add_error(None, str(error))
    updates = [
        {"update": u, "sent": product_updates.sent_count(u)}
        for u in ProductUpdate.objects.order_by("-created_at", "-pk")[:20]
    ]
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": _("Product updates"),
        "form": form,
        "preview": shown,
        "audience": product_updates.audience_size(),
        "updates": updates,
    }
    return TemplateResponse(
        request, "sending/staff/product_updates.html", context, status=400 if form.errors else 200
    )
