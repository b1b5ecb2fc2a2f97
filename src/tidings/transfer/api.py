"""HTTP API routes of the transfer app (imports and exports), mounted by tidings.api
under /api/v1/.

An import is three calls, as in the browser: send the file as the request body
(`POST /imports?name=contacts.csv`, streamed to disk under the same size limit; a worker
then analyses it: poll until its status is `uploaded`), set the mapping
(`PUT /imports/{id}/mapping`, the suggestion comes with the analysis), then state
the legal basis (`POST /imports/{id}/start`). Poll `GET /imports/{id}` for progress and
fetch the refused rows from `GET /imports/{id}/rejected.csv`. An export is one call,
`POST /exports`; poll it, then download `GET /exports/{id}/file`.

Every route starts from the key's account: another account's id is a 404. Bad input is
a 422 (413 for a file over the limit) with a `detail`, and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, Literal

from django.http import FileResponse, HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import MAX_ID, Input, account_of
from tidings.accounts.models import Account
from tidings.audience.models import MailingList, Segment
from tidings.core.uploads import declared_length
from tidings.transfer import services
from tidings.transfer.errors import TransferError, UploadTooLarge
from tidings.transfer.models import ExportJob, ImportJob, transfer_path

router = Router(tags=["transfer"])

CHUNK = 256 * 1024


class Error(Schema):
    detail: str


class ImportOut(Schema):
    id: int
    status: str
    name: str
    size: int
    format: str
    encoding: str
    delimiter: str
    has_header: bool
    columns: list[str]
    mapping: list[str] = Field(
        ...,
        description='One target per column: "email", "name", "first_name", "last_name", '
        '"attribute:<key>", "attributes" (JSON), "tags", "status", "optout" or "ignore".',
    )
    types: list[str] = Field(
        ...,
        description="The type of each column, used where it is imported as an attribute: "
        '"text", "number", "date" or "boolean" (guessed from the first rows by the analysis).',
    )
    mode: str
    lists: list[uuid.UUID]
    legal_basis: str
    progress: float = Field(..., description="Percent of the rows read.")
    rows_done: int
    rows_total: int | None
    counts: dict[str, int]
    error: str
    created_at: datetime
    finished_at: datetime | None


class MappingIn(Input):
    targets: list[str]
    mode: Literal["add", "update"] = Field(
        "add", description="add: new contacts only; update: existing ones are updated too."
    )
    lists: list[uuid.UUID] = Field([], description="Lists every imported contact joins.")
    types: list[Literal["text", "number", "date", "boolean", ""]] | None = Field(
        None,
        description="The type of each column imported as an attribute; values that do not "
        "fit are refused with their reason. Omitted: the types the analysis guessed.",
    )


class StartIn(Input):
    legal_basis: Literal["consent", "contract"]
    basis_date: date | None = Field(None, description="When the consent was collected.")
    statement: str = Field(
        ..., max_length=400, description="How and where these people gave consent."
    )


class ExportIn(Input):
    format: Literal["csv", "xlsx", "xls"]
    scope: Literal["all", "list", "search", "segment"] = "all"
    list: uuid.UUID | None = Field(None, description="The list, for scope `list`.")
    segment: uuid.UUID | None = Field(None, description="The segment, for scope `segment`.")
    q: str = Field("", max_length=200, description="Email or name part, for scope `search`.")
    status: str = Field("", description="A contact status, for scope `search`.")


class ExportOut(Schema):
    id: int
    status: str
    format: str
    scope: str
    description: str
    rows: int
    size: int
    error: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None


class Paging(Input):
    offset: int = Field(0, ge=0, le=MAX_ID - 200)
    limit: int = Field(50, ge=1, le=200)


# --- helpers -------------------------------------------------------------------------

EXPORT_TYPES = {
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel": "xls",
}


def _file(description: str, media_types: list[str]) -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"description": description, "content": dict.fromkeys(media_types, binary)}


def _import(account: Account, pk: int) -> ImportJob:
    job = ImportJob.objects.filter(account=account, pk=pk).first()
    if job is None:
        raise HttpError(404, "No such import.")
    return job


def _export(account: Account, pk: int) -> ExportJob:
    job = ExportJob.objects.filter(account=account, pk=pk).first()
    if job is None:
        raise HttpError(404, "No such export.")
    return job


def _list_uuids(account: Account, ids: list[int]) -> list[uuid.UUID]:
    return list(
        MailingList.objects.filter(account=account, pk__in=ids)
        .order_by("pk")
        .values_list("uuid", flat=True)
    )


def _import_out(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "status": job.status,
        "name": job.original_name,
        "size": job.size,
        "format": job.format,
        "encoding": job.encoding,
        "delimiter": job.delimiter,
        "has_header": job.has_header,
        "columns": job.columns,
        "mapping": job.mapping,
        "types": list(job.types),
        "mode": job.mode,
        "lists": _list_uuids(job.account, job.list_ids),
        "legal_basis": job.legal_basis,
        "progress": job.percent,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "counts": {k: int(v) for k, v in job.counts.items()},
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def _export_out(job: ExportJob) -> dict[str, Any]:
    fields = ["status", "format", "scope", "description", "rows", "size", "error"]
    return {"id": job.pk, **{f: getattr(job, f) for f in fields}} | {
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
    }


def _body(request: HttpRequest) -> Iterator[bytes]:
    """The request body in chunks, straight from the socket: never whole in memory."""
    while chunk := request.read(CHUNK):
        yield chunk


# --- imports -------------------------------------------------------------------------


@router.post(
    "/imports",
    response={201: ImportOut, 413: Error, 422: Error},
    summary="Upload a file to import (CSV, XLSX or XLS as the request body)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
def upload_import(
    request: HttpRequest, name: str = Query("upload", max_length=255)
) -> Status[dict[str, Any]]:
    """Send the file itself as the body (`curl --data-binary @contacts.csv`). The file is
    analysed by a worker: the answer has status `analysing`; poll `GET /imports/{id}`
    until it is `uploaded` (format, encoding, columns and the suggested mapping found) or
    `failed` (`error` says why, the file is deleted)."""
    account = account_of(request)
    # A body declared over the limit never gets here (core.uploads answers 413 unread);
    # one that streams past it without saying its length is cut by the writer.
    if declared_length(request) == 0:
        raise HttpError(422, "Send the file as the request body.")
    try:
        job = services.receive_upload(account, by=None, name=name, chunks=_body(request))
    except UploadTooLarge as error:
        raise HttpError(413, str(error)) from None
    except TransferError as error:
        raise HttpError(422, f"{name}: {error} Nothing was imported.") from None
    return Status(201, _import_out(job))


@router.get("/imports", response=list[ImportOut], summary="Imports, newest first")
def list_imports(request: HttpRequest, paging: Query[Paging]) -> list[dict[str, Any]]:
    jobs = ImportJob.objects.filter(account=account_of(request)).select_related("account")
    return [_import_out(j) for j in jobs[paging.offset : paging.offset + paging.limit]]


@router.get("/imports/{import_id}", response={200: ImportOut, 404: Error})
def get_import(request: HttpRequest, import_id: int) -> dict[str, Any]:
    return _import_out(_import(account_of(request), import_id))


@router.put(
    "/imports/{import_id}/mapping",
    response={200: ImportOut, 404: Error, 422: Error},
    summary="Map the columns, choose add or update and the lists",
)
def map_import(request: HttpRequest, import_id: int, data: MappingIn) -> dict[str, Any]:
    account = account_of(request)
    job = _import(account, import_id)
    wanted = set(data.lists)
    lists = dict(
        MailingList.objects.filter(account=account, uuid__in=wanted).values_list("uuid", "pk")
    )
    if set(lists) != wanted:
        raise HttpError(422, "One of the chosen lists does not exist.")
    try:
        services.set_mapping(
            job,
            targets=data.targets,
            mode=data.mode,
            list_ids=lists.values(),
            types=list(data.types) if data.types is not None else None,
        )
    except TransferError as error:
        raise HttpError(422, str(error)) from None
    return _import_out(job)


@router.post(
    "/imports/{import_id}/start",
    response={202: ImportOut, 404: Error, 422: Error},
    summary="State the legal basis and start the import",
)
def start_import(request: HttpRequest, import_id: int, data: StartIn) -> Status[dict[str, Any]]:
    job = _import(account_of(request), import_id)
    try:
        services.start_import(
            job,
            by=None,
            legal_basis=data.legal_basis,
            basis_date=data.basis_date,
            statement=data.statement,
        )
    except TransferError as error:
        raise HttpError(422, str(error)) from None
    job.refresh_from_db()
    return Status(202, _import_out(job))


@router.get(
    "/imports/{import_id}/rejected.csv",
    response={404: Error},
    summary="The refused rows, each with its line number and reason",
    openapi_extra={"responses": {"200": _file("The refused rows.", ["text/csv"])}},
)
def import_rejected(request: HttpRequest, import_id: int) -> FileResponse:
    job = _import(account_of(request), import_id)
    if not job.report_file or not transfer_path(job.report_file).exists():
        raise HttpError(404, "This import has no refused rows (or their report expired).")
    return FileResponse(
        transfer_path(job.report_file).open("rb"),
        as_attachment=True,
        filename=f"import-{job.pk}-rejected.csv",
        content_type="text/csv; charset=utf-8",
    )


@router.delete(
    "/imports/{import_id}",
    response={204: None, 404: Error, 409: Error},
    summary="Discard an import not yet started",
)
def discard_import(request: HttpRequest, import_id: int) -> Status[None]:
    job = _import(account_of(request), import_id)
    try:
        services.discard_import(job)
    except TransferError as error:
        raise HttpError(409, str(error)) from None
    return Status(204, None)


# --- exports -------------------------------------------------------------------------


@router.post(
    "/exports",
    response={202: ExportOut, 404: Error, 422: Error},
    summary="Export the audience, a list, a search or a segment",
)
def create_export(request: HttpRequest, data: ExportIn) -> Status[dict[str, Any]]:
    account = account_of(request)
    list_id = segment_id = None
    if data.scope == "segment":
        if data.segment is None:
            raise HttpError(422, "Give the segment to export.")
        segment = Segment.objects.filter(account=account, uuid=data.segment).first()
        if segment is None:
            raise HttpError(404, "No such segment.")
        segment_id = segment.pk
    if data.scope == "list":
        if data.list is None:
            raise HttpError(422, "Give the list to export.")
        mailing_list = MailingList.objects.filter(account=account, uuid=data.list).first()
        if mailing_list is None:
            raise HttpError(404, "No such list.")
        list_id = mailing_list.pk
    try:
        job = services.start_export(
            account,
            by=None,
            fmt=data.format,
            scope=data.scope,
            list_id=list_id,
            segment_id=segment_id,
            q=data.q,
            status=data.status,
        )
    except TransferError as error:
        raise HttpError(422, str(error)) from None
    job.refresh_from_db()
    return Status(202, _export_out(job))


@router.get("/exports", response=list[ExportOut], summary="Exports, newest first")
def list_exports(request: HttpRequest, paging: Query[Paging]) -> list[dict[str, Any]]:
    jobs = ExportJob.objects.filter(account=account_of(request))
    return [_export_out(j) for j in jobs[paging.offset : paging.offset + paging.limit]]


@router.get("/exports/{export_id}", response={200: ExportOut, 404: Error})
def get_export(request: HttpRequest, export_id: int) -> dict[str, Any]:
    return _export_out(_export(account_of(request), export_id))


@router.get(
    "/exports/{export_id}/file",
    response={404: Error, 409: Error},
    summary="Download a finished export",
    openapi_extra={
        "responses": {"200": _file("The file, in the export's format.", list(EXPORT_TYPES))}
    },
)
def download_export(request: HttpRequest, export_id: int) -> FileResponse:
    job = _export(account_of(request), export_id)
    try:
        path = services.export_file(job, by=None)
    except TransferError as error:
        raise HttpError(409, str(error)) from None
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"contacts.{job.format}")
