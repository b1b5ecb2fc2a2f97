"""The dashboard after login, a campaign's report and its exports. Thin: the figures
are `sending.dashboard` and `sending.reports`."""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tidings.accounts.decorators import account_of, customer_required
from tidings.campaigns.models import Campaign
from tidings.sending import dashboard, reports


@customer_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Where a customer lands after logging in; a user without an account (staff) goes
    to My Account, which leads them on."""
    if getattr(request, "account", None) is None:
        return redirect("accounts:my_account")
    account = account_of(request)
    days = 90 if request.GET.get("days") == "90" else 30
    return render(request, "sending/dashboard.html", dashboard.context(account, days))


def _campaign(request: HttpRequest, uuid: UUID) -> Campaign:
    return get_object_or_404(Campaign, account=account_of(request), uuid=uuid)


@customer_required
def report_page(request: HttpRequest, uuid: UUID) -> HttpResponse:
    report = reports.build(_campaign(request, uuid))
    rows = [
        {"label": label, "values": [report.series.lines[kind][i] for kind in reports.KINDS]}
        for i, label in enumerate(report.series.labels)
    ]
    return render(
        request,
        "sending/report.html",
        {
            "report": report,
            "campaign": report.campaign,
            "chart": reports.chart_data(report),
            "rows": rows,
            "kind_labels": [reports.KIND_LABELS[kind] for kind in reports.KINDS],
            "formats": reports.EXPORT_FORMATS,
        },
    )


@customer_required
def report_export(request: HttpRequest, uuid: UUID, fmt: str) -> HttpResponse:
    if fmt not in reports.EXPORT_FORMATS:
        raise Http404("No such format")
    content, content_type, name = reports.export(reports.build(_campaign(request, uuid)), fmt)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
