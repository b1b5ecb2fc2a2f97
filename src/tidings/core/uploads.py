"""Request bodies: one limit, enforced before a byte of the body is read.

`BodySizeLimitMiddleware` answers 413 to any request whose declared Content-Length is
over the largest upload Tidings takes (`TRANSFER_UPLOAD_MAX_BYTES`, plus room for a
form's other fields): the web form and the API are refused the same way, at once,
instead of after the whole body was received. A body with no Content-Length (chunked)
is cut at the same limit while it streams, by the import's upload handler (the web form)
and by the writer under the API. Django's WSGI request reads no body it was not told the
length of, so nothing else can be made to swallow one.

`DiscardFileUploadHandler` is Django's upload handler everywhere else: Tidings takes
files only through the import's own handler (transfer/uploads.py), so a file part sent
to any other page is dropped as it streams, never written to a temporary file that a
refused or killed request could leave behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

# The form fields that travel with an uploaded file (CSRF token, boundaries).
FORM_ENVELOPE = 64 * 1024


def size_label(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:g} GB"
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n} bytes"


def too_large_message(limit: int) -> str:
    return _(
        "The file is larger than the limit of %(limit)s: nothing was stored. Split it into "
        "smaller files, or ask the operator to raise the limit."
    ) % {"limit": size_label(limit)}


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.TRANSFER_UPLOAD_MAX_BYTES
        if declared_length(request) > limit + FORM_ENVELOPE:
            message = too_large_message(limit)
            response: HttpResponse
            if request.path.startswith("/api/"):
                response = JsonResponse({"detail": message}, status=413)
            else:
                response = render(request, "413.html", {"message": message}, status=413)
            return response
        return self.get_response(request)


class DiscardFileUploadHandler(FileUploadHandler):
    """Drops every file part: its chunks are neither kept in memory nor written."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        return None

    def file_complete(self, file_size: int) -> Any:
        return None
