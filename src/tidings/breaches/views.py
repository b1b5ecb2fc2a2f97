"""The customer's side of a breach notice (P33): the banner's "I have read it", and the
notice's page, from which a customer whose contacts were touched sends them the ready
notice with one click."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from tidings.accounts.models import User
from tidings.breaches import services
from tidings.breaches.models import Notice
from tidings.core import locales


@login_required
@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the user's own notice: another's number is simply not found.
    user = request.user
    assert isinstance(user, User)  # login_required
    notice = Notice.objects.filter(pk=pk, user=user).first()
    if notice is None:
        raise Http404
    services.acknowledge(notice, by=user)
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else "/")


class ContactNoticeForm(forms.Form):
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    text = forms.CharField(label=gettext_lazy("Text"), widget=forms.Textarea, max_length=20000)


@login_required
def notice(request: HttpRequest, pk: int) -> HttpResponse:
    """One breach notice of the signed-in user; for their contacts' data, the facts of
    their account and the ready notice to send to their contacts, edited or not."""
    user = request.user
    assert isinstance(user, User)  # login_required
    item = Notice.objects.filter(pk=pk, user=user).select_related("incident").first()
    if item is None:
        raise Http404
    scope = services.current_scope(item.incident)
    row = next(
        (r for r in (scope.per_account if scope else []) if r["account"] == item.account_ref), None
    )
    with locales.language(item.account.language if item.account else None):
        draft_subject = gettext("About a security incident that touched your data")
        draft = render_to_string("breaches/contact_notice_draft.txt", {"incident": item.incident})
    form = ContactNoticeForm(
        request.POST or None, initial={"subject": draft_subject, "text": draft}
    )
    if request.method == "POST" and item.role == Notice.Role.PROCESSOR and form.is_valid():
        try:
            told = services.send_contact_notice(item, by=user, **form.cleaned_data)
            messages.success(
                request, gettext("The notice is on its way to %(n)s contacts.") % {"n": told}
            )
            return redirect("breach_notice", item.pk)
        except services.BreachError as error:
            form.add_error(None, str(error))
    context = {
        "notice": item, "incident": item.incident, "scope": scope, "row": row, "form": form,
        "severity": services.severity_of(item.incident) if row else None,
    }  # fmt: skip
    status = 400 if form.errors else 200
    return TemplateResponse(request, "breaches/notice.html", context, status=status)
