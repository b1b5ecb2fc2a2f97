"""The privacy office pages in the staff console (privacy officers and admins only)."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import asdict, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.accounts.models import Account
from tidings.audience import rights
from tidings.audience.models import Contact
from tidings.core.addresses import InvalidAddress, normalise_email
from tidings.core.spreadsheets import SINKS
from tidings.privacy import office
from tidings.privacy.models import AccountExport, DataRequest, Disclosure, ErasureRecord
from tidings.staff import audit
from tidings.staff.admin_site import site

PERMISSION = "privacy.view_disclosure"
REASON = "privacy office: requests, erasures and disclosures"


def _officer(request: HttpRequest) -> Any:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    return request.user


class DisclosureForm(forms.Form):
    authority = forms.CharField(label=gettext_lazy("To whom (authority)"), max_length=200)
    legal_ground = forms.CharField(
        label=gettext_lazy("Legal ground"),
        max_length=300,
        help_text=gettext_lazy("The order, statute or article."),
    )
    reference = forms.CharField(label=gettext_lazy("Reference"), required=False, max_length=100)
    disclosed_at = forms.DateTimeField(
        label=gettext_lazy("Disclosed on"),
        help_text=gettext_lazy("The day it was made (YYYY-MM-DD, or YYYY-MM-DD HH:MM)."),
    )
    data_disclosed = forms.CharField(
        label=gettext_lazy("What was disclosed"), widget=forms.Textarea
    )
    account = forms.IntegerField(
        label=gettext_lazy("Customer account number"),
        required=False,
        help_text=gettext_lazy("When it concerns one."),
    )
    contact = forms.CharField(
        label=gettext_lazy("Contact's address"),
        required=False,
        max_length=320,
        help_text=gettext_lazy(
            "When it concerns one of that account's contacts rather than the customer."
        ),
    )
    withheld_until = forms.DateTimeField(
        label=gettext_lazy("Not told to the customer until"),
        required=False,
        help_text=gettext_lazy(
            "Only while a legal prohibition on telling applies (YYYY-MM-DD): the customer "
            "is told on that day."
        ),
    )
    withheld_ground = forms.CharField(
        label=gettext_lazy("Prohibition on telling"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("The order or statute that forbids telling the customer."),
    )

    def clean_account(self) -> Account | None:
        number = self.cleaned_data.get("account")
        if number is None:
            return None
        account = Account.objects.filter(pk=number).first()
        if account is None:
            raise forms.ValidationError(_("No account has that number."))
        return account

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        address = (data.get("contact") or "").strip()
        if not address:
            data["contact"] = None
            return data
        account = data.get("account")
        if account is None:
            self.add_error("account", _("Give the number of the account the contact is in."))
            return data
        try:
            email = normalise_email(address)
        except InvalidAddress:
            email = address.lower()
        contact = Contact.objects.filter(account=account, email=email).first()
        if contact is None:
            self.add_error("contact", _("That account has no contact with this address."))
        data["contact"] = contact
        return data


class RequestForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=DataRequest.Kind.choices)
    requester = forms.CharField(label=gettext_lazy("Who asked (name and email)"), max_length=300)
    details = forms.CharField(label=gettext_lazy("Details"), required=False, widget=forms.Textarea)
    received_at = forms.DateTimeField(
        label=gettext_lazy("Received at"),
        required=False,
        help_text=gettext_lazy("When it arrived, if not now (YYYY-MM-DD HH:MM)."),
    )


class CloseForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[
            (DataRequest.Status.DONE, gettext_lazy("answered")),
            (DataRequest.Status.REFUSED, gettext_lazy("refused")),
        ],
    )
    answer = forms.CharField(label=gettext_lazy("Answer"), widget=forms.Textarea, required=False)


def dashboard(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    disclosure_form = DisclosureForm(prefix="d")
    request_form = RequestForm(prefix="r")
    if request.method == "POST":
        try:
            if "d-authority" in request.POST:
                disclosure_form = DisclosureForm(request.POST, prefix="d")
                if disclosure_form.is_valid():
                    office.record_disclosure(by=officer, **disclosure_form.cleaned_data)
                    messages.success(request, _("The disclosure is recorded."))
                    return redirect("privacy_office")
            else:
                request_form = RequestForm(request.POST, prefix="r")
                if request_form.is_valid():
                    logged = office.log_request(by=officer, **request_form.cleaned_data)
                    messages.success(
                        request,
                        _("The request is logged: it is due on %(due)s.")
                        % {"due": date_format(logged.due_at, "j F Y")},
                    )
                    return redirect("privacy_office")
        except office.OfficeError as error:
            (disclosure_form if "d-authority" in request.POST else request_form).add_error(
                None, str(error)
            )
    open_requests = list(DataRequest.objects.filter(status=DataRequest.Status.OPEN))
    contact_requests = list(rights.open_requests_of_closed_accounts())
    disclosures = list(Disclosure.objects.all()[:50])
    audit.record_many(
        audit.AuditEvent.Action.LIST,
        [*open_requests, *contact_requests, *[d for d in disclosures if not d.is_withheld]],
        by=officer,
        reason=REASON,
    )
    for withheld in (d for d in disclosures if d.is_withheld):
        # Out of the customer's trail while they may not be told (privacy.office).
        audit.record(
            audit.AuditEvent.Action.LIST,
            by=officer,
            target_type=Disclosure._meta.label,
            target_id=str(withheld.pk),
            reason=REASON,
        )
    scheduled = Account.objects.exclude(status=Account.Status.ACTIVE).order_by("erase_after")
    context = {
        **site.each_context(request),
        "title": _("Privacy office"),
        "now": timezone.now(),
        "open_requests": open_requests,
        "contact_requests": contact_requests,
        "disclosures": disclosures,
        "scheduled": scheduled.values("pk", "status", "closed_at", "erase_after", "erase_deadline"),
        "erasures": ErasureRecord.objects.order_by("-started_at")[:20],
        "erasures_done": ErasureRecord.objects.filter(finished_at__isnull=False).count(),
        # Archives of "all my data" (P20): account numbers, formats and dates only.
        "exports": AccountExport.objects.order_by("-created_at").values(
            "account_id", "format", "status", "created_at", "finished_at", "expires_at"
        )[:20],
        "exports_month": AccountExport.objects.filter(
            created_at__gte=timezone.now() - timedelta(days=30)
        ).count(),
        "disclosure_form": disclosure_form,
        "request_form": request_form,
        "activities": office.records_of_processing(),
    }
    status = 400 if disclosure_form.errors or request_form.errors else 200
    return TemplateResponse(request, "privacy/office/dashboard.html", context, status=status)


def close_request(request: HttpRequest, pk: int) -> HttpResponse:
    officer = _officer(request)
    data_request = get_object_or_404(DataRequest, pk=pk)
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            office.close_request(data_request, by=officer, **form.cleaned_data)
            messages.success(request, _("The request is closed."))
            return redirect("privacy_office")
        except office.OfficeError as error:
            form.add_error(None, str(error))
    audit.record(audit.AuditEvent.Action.READ, data_request, by=officer, reason=REASON,
                 fields=["requester", "details"])  # fmt: skip
    context = {**site.each_context(request), "title": str(data_request), "item": data_request,
               "form": form}  # fmt: skip
    status = 400 if form.errors else 200
    return TemplateResponse(request, "privacy/office/close_request.html", context, status=status)


class ContactAnswerForm(forms.Form):
    answer = forms.CharField(
        label=gettext_lazy("Answer mailed to the contact"), widget=forms.Textarea, required=False
    )


def contact_request(request: HttpRequest, request_uuid: uuid.UUID) -> HttpResponse:
    """A contact's open request to a closed account: the privacy office answers it (or
    fulfils an erasure) in the account's place, until the erasure hands it over."""
    officer = _officer(request)
    item = rights.request_of_closed_account(request_uuid)
    if item is None:
        raise Http404
    form = ContactAnswerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            if request.POST.get("action") == "erase":
                rights.erase_for_closed_account(item, by=officer)
                messages.success(request, _("The contact is erased and has been told."))
            else:
                rights.answer_for_closed_account(
                    item, by=officer, answer=form.cleaned_data["answer"]
                )
                messages.success(request, _("The answer is mailed; the request is closed."))
            return redirect("privacy_office")
        except rights.RequestError as error:
            form.add_error(None, str(error))
    audit.record(audit.AuditEvent.Action.READ, item, by=officer, reason=REASON,
                 fields=["email", "details"], account_id=item.account_id)  # fmt: skip
    context = {**site.each_context(request), "title": str(item), "item": item, "form": form}
    status = 400 if form.errors else 200
    return TemplateResponse(request, "privacy/office/contact_request.html", context, status=status)


def records_download(request: HttpRequest, fmt: str) -> HttpResponse:
    """The records of processing activities as CSV or XLSX, for the authority, written by
    the spreadsheet sinks (each format with its rule of formula safety)."""
    _officer(request)
    if fmt not in ("csv", "xlsx"):
        raise PermissionDenied
    activities = office.records_of_processing()
    headers = [f.name.replace("_", " ") for f in fields(office.Activity)]
    stamp = timezone.now().strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory(prefix="tidings-records-") as tmp:
        path = Path(tmp) / f"records.{fmt}"
        sink = SINKS[fmt](path, headers, "Records of processing")
        try:
            sink.write([list(asdict(a).values()) for a in activities])
        finally:
            sink.close()
        body = path.read_bytes()
    content_type = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }[fmt]
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="records-of-processing-{stamp}.{fmt}"'
    return response
