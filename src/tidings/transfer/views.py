"""Audience → Import and Export pages. Thin: the services do the work.

Every object is looked up from the logged-in user's account: another account's import or
export id is a 404.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience.models import MailingList
from tidings.core.uploads import size_label
from tidings.transfer import services
from tidings.transfer.errors import TransferError
from tidings.transfer.forms import BasisForm, ExportForm, MappingForm
from tidings.transfer.models import ExportJob, ImportJob, transfer_path
from tidings.transfer.uploads import ImportUploadHandler, StoredUpload


def _account_id(request: HttpRequest) -> int:
    return int(account_of(request).pk)


def _import(request: HttpRequest, pk: int) -> ImportJob:
    return get_object_or_404(ImportJob, pk=pk, account_id=_account_id(request))


def _export(request: HttpRequest, pk: int) -> ExportJob:
    return get_object_or_404(ExportJob, pk=pk, account_id=_account_id(request))


@customer_required
def imports(request: HttpRequest) -> HttpResponse:
    jobs = Paginator(ImportJob.objects.filter(account_id=_account_id(request)), 25)
    return render(
        request,
        "transfer/imports.html",
        {
            "jobs": jobs.get_page(request.GET.get("page")),
            "limit": size_label(settings.TRANSFER_UPLOAD_MAX_BYTES),
        },
    )


@customer_required
@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    """Upload handlers must be set before the body is read, hence CSRF checked below."""
    if request.method != "POST":
        return redirect("transfer:imports")
    _account_id(request)
    handler = ImportUploadHandler(request)
    request.upload_handlers = [handler]
    try:
        return _receive(request, handler)
    finally:
        # Refused (CSRF, an empty or bad form) or failed: the stored file goes at once.
        # Only an import made from it keeps it.
        handler.discard_unclaimed()


@csrf_protect
def _receive(request: HttpRequest, handler: ImportUploadHandler) -> HttpResponse:
    stored = request.FILES.get("file")
    if handler.error:
        messages.error(request, handler.error)
        return redirect("transfer:imports")
    if not isinstance(stored, StoredUpload) or stored.size == 0:
        messages.error(request, _("Choose a CSV, XLSX or XLS file to upload."))
        return redirect("transfer:imports")
    try:
        job = services.create_import(
            account_of(request),
            by=request.user,  # type: ignore[arg-type]
            original_name=stored.name or "upload",
            upload_file=stored.relative,
            size=stored.size or 0,
        )
    except TransferError as error:
        messages.error(
            request,
            _("%(name)s: %(error)s Nothing was imported.") % {"name": stored.name, "error": error},
        )
        return redirect("transfer:imports")
    handler.claimed = True
    return redirect("transfer:import_map", pk=job.pk)


@customer_required
def import_map(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import(request, pk)
    if job.status == ImportJob.Status.ANALYSING:
        return render(request, "transfer/import_analysing.html", {"job": job})
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.MAPPED):
        return redirect("transfer:import_detail", pk=job.pk)
    form = MappingForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            services.set_mapping(
                job,
                targets=form.targets(),
                types=form.types(),
                mode=form.cleaned_data["mode"],
                list_ids=[m.pk for m in form.cleaned_data["lists"]],
            )
        except TransferError as error:
            form.add_error(None, str(error))
        else:
            return redirect("transfer:import_basis", pk=job.pk)
    return render(
        request,
        "transfer/import_map.html",
        {"job": job, "form": form, "rows": form.rows(services.preview(job))},
    )


@customer_required
def import_basis(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import(request, pk)
    if job.status in (ImportJob.Status.ANALYSING, ImportJob.Status.UPLOADED):
        return redirect("transfer:import_map", pk=job.pk)
    if job.status != ImportJob.Status.MAPPED:
        return redirect("transfer:import_detail", pk=job.pk)
    form = BasisForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.start_import(
                job,
                by=request.user,  # type: ignore[arg-type]
                legal_basis=form.cleaned_data["legal_basis"],
                basis_date=form.cleaned_data["basis_date"],
                statement=form.cleaned_data["statement"],
            )
        except TransferError as error:
            form.add_error(None, str(error))
        else:
            return redirect("transfer:import_detail", pk=job.pk)
    return render(request, "transfer/import_basis.html", {"job": job, "form": form})


@customer_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import(request, pk)
    if job.status in (
        ImportJob.Status.ANALYSING,
        ImportJob.Status.UPLOADED,
        ImportJob.Status.MAPPED,
    ):
        return redirect("transfer:import_map", pk=job.pk)
    # The lists the rows were put on, by name (one deleted since is no longer named).
    lists = MailingList.objects.filter(account_id=job.account_id, pk__in=job.list_ids)
    return render(
        request,
        "transfer/import_detail.html",
        {"job": job, "lists": lists.order_by("name").values_list("name", flat=True)},
    )


@customer_required
def import_status(request: HttpRequest, pk: int) -> JsonResponse:
    job = _import(request, pk)
    return JsonResponse(
        {
            "status": job.status,
            "label": job.get_status_display(),
            "percent": job.percent,
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "counts": job.counts,
            "finished": job.is_finished,
            "error": job.error,
        }
    )


@customer_required
def import_report(request: HttpRequest, pk: int) -> FileResponse:
    job = _import(request, pk)
    path = transfer_path(job.report_file) if job.report_file else None
    if not job.is_finished or path is None or not path.exists():
        raise Http404("No report for this import (not finished, or expired).")
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=f"import-{job.pk}-rejected-rows.csv",
        content_type="text/csv; charset=utf-8",
    )


@customer_required
@require_POST
def import_discard(request: HttpRequest, pk: int) -> HttpResponse:
    job = _import(request, pk)
    try:
        services.discard_import(job)
    except TransferError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The upload was deleted; nothing was imported."))
    return redirect("transfer:imports")


@customer_required
def exports(request: HttpRequest) -> HttpResponse:
    account_id = _account_id(request)
    # A segment's page links here with its segment chosen (?segment=<id>).
    initial = {}
    if request.method == "GET" and request.GET.get("segment", "").isdigit():
        initial = {"scope": ExportJob.Scope.SEGMENT, "segment": int(request.GET["segment"])}
    form = ExportForm(request.POST or None, account_id=account_id, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.start_export(
                account_of(request),
                by=request.user,  # type: ignore[arg-type]
                fmt=data["format"],
                scope=data["scope"],
                list_id=data["mailing_list"].pk if data["mailing_list"] else None,
                segment_id=data["segment"].pk if data["segment"] else None,
                q=data["q"],
                status=data["status"],
            )
        except TransferError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The export is being built; it appears below when ready."))
            return redirect("transfer:exports")
    jobs = ExportJob.objects.filter(account_id=account_id)
    active = any(j.status in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING) for j in jobs)
    return render(
        request,
        "transfer/exports.html",
        {
            "form": form,
            "jobs": jobs[:50],
            "refresh": active and request.method == "GET",
            "days": settings.TRANSFER_FILE_DAYS,
        },
    )


@customer_required
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    job = _export(request, pk)
    try:
        path = services.export_file(job, by=request.user)  # type: ignore[arg-type]
    except TransferError as error:
        raise Http404(str(error)) from None
    types = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xls": "application/vnd.ms-excel",
    }
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=job.filename,
        content_type=types[job.format],
    )
