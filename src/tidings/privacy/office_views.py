"""The privacy office pages in the staff console (privacy officers and admins only)."""

from __future__ import annotations

import io
from dataclasses import asdict, fields
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook

from tidings.accounts.models import Account
from tidings.core.spreadsheets import csv_writer, neutralise_row
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
    authority = forms.CharField(label=_("To whom (authority)"), max_length=200)
    legal_ground = forms.CharField(
        label=_("Legal ground"), max_length=300, help_text=_("The order, statute or article.")
    )
    reference = forms.CharField(label=_("Reference"), required=False, max_length=100)
    data_disclosed = forms.CharField(label=_("What was disclosed"), widget=forms.Textarea)
    account = forms.IntegerField(
        label=_("Customer account number"), required=False, help_text=_("When it concerns one.")
    )

    def clean_account(self) -> Account | None:
        number = self.cleaned_data.get("account")
        if number is None:
            return None
        account = Account.objects.filter(pk=number).first()
        if account is None:
            raise forms.ValidationError(_("No account has that number."))
        return account


class RequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=DataRequest.Kind.choices)
    requester = forms.CharField(label=_("Who asked (name and email)"), max_length=300)
    details = forms.CharField(label=_("Details"), required=False, widget=forms.Textarea)
    received_at = forms.DateTimeField(
        label=_("Received at"),
        required=False,
        help_text=_("When it arrived, if not now (YYYY-MM-DD HH:MM)."),
    )


class CloseForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[
            (DataRequest.Status.DONE, _("answered")),
            (DataRequest.Status.REFUSED, _("refused")),
        ],
    )
    answer = forms.CharField(label=_("Answer"), widget=forms.Textarea, required=False)


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
                    return redirect("privacy_office")
            else:
                request_form = RequestForm(request.POST, prefix="r")
                if request_form.is_valid():
                    office.log_request(by=officer, **request_form.cleaned_data)
                    return redirect("privacy_office")
        except office.OfficeError as error:
            (disclosure_form if "d-authority" in request.POST else request_form).add_error(
                None, str(error)
            )
    open_requests = list(DataRequest.objects.filter(status=DataRequest.Status.OPEN))
    disclosures = list(Disclosure.objects.all()[:50])
    audit.record_many(
        audit.AuditEvent.Action.LIST, [*open_requests, *disclosures], by=officer, reason=REASON
    )
    scheduled = Account.objects.exclude(status=Account.Status.ACTIVE).order_by("erase_after")
    context = {
        **site.each_context(request),
        "title": _("Privacy office"),
        "now": timezone.now(),
        "open_requests": open_requests,
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
    return TemplateResponse(request, "privacy/office/dashboard.html", context)


def close_request(request: HttpRequest, pk: int) -> HttpResponse:
    officer = _officer(request)
    data_request = get_object_or_404(DataRequest, pk=pk)
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            office.close_request(data_request, by=officer, **form.cleaned_data)
            return redirect("privacy_office")
        except office.OfficeError as error:
            form.add_error(None, str(error))
    audit.record(audit.AuditEvent.Action.READ, data_request, by=officer, reason=REASON,
                 fields=["requester", "details"])  # fmt: skip
    context = {**site.each_context(request), "title": str(data_request), "item": data_request,
               "form": form}  # fmt: skip
    return TemplateResponse(request, "privacy/office/close_request.html", context)


def records_download(request: HttpRequest, fmt: str) -> HttpResponse:
    """The records of processing activities as CSV or XLSX, for the authority."""
    _officer(request)
    activities = office.records_of_processing()
    headers = [f.name.replace("_", " ") for f in fields(office.Activity)]
    rows = [neutralise_row(asdict(a).values()) for a in activities]
    stamp = timezone.now().strftime("%Y-%m-%d")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="records-of-processing-{stamp}.csv"'
        )
        return response
    if fmt == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Records of processing")
        sheet.append(headers)
        for row in rows:
            sheet.append(row)
        out = io.BytesIO()
        workbook.save(out)
        response = HttpResponse(
            out.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="records-of-processing-{stamp}.xlsx"'
        )
        return response
    raise PermissionDenied
