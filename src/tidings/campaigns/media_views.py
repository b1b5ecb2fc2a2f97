"""The media library's pages (upload, list, delete) and the public address of an image.

An upload is read into memory up to the library's limit and no further: a request that
declares more is refused with 413 before its body is read, and one that streams more
(no declared length) is cut by the upload handler. The image is served to anyone who has
its unguessable address (mail clients log in nowhere), with no script allowed to run.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import User
from tidings.campaigns import media
from tidings.campaigns.models import MediaImage
from tidings.core.baseurl import absolute
from tidings.core.uploads import FORM_ENVELOPE, declared_length, size_label

IMAGE_CSP = "sandbox; default-src 'none'; frame-ancestors 'self'"


class ImageUploadHandler(FileUploadHandler):
    """Keeps the `image` file part in memory up to `media.MAX_BYTES`; stops beyond."""

    field = "image"

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.chunks: list[bytes] = []
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.field_name != self.field or self.too_large:
            return None
        self.received += len(raw_data)
        if self.received > media.MAX_BYTES:
            self.too_large, self.chunks = True, []
            raise StopUpload(connection_reset=False)
        self.chunks.append(raw_data)
        return None

    def file_complete(self, file_size: int) -> SimpleUploadedFile | None:
        if self.field_name != self.field or self.too_large:
            return None
        data, self.chunks = b"".join(self.chunks), []
        return SimpleUploadedFile(self.file_name or "image", data)


def public_url(image: MediaImage) -> str:
    """The absolute address of an image, as campaigns link it."""
    return absolute(reverse("campaigns:media_file", kwargs={"key": image.key, "name": image.name}))


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _library(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    images = MediaImage.objects.filter(account=account_of(request)).defer("data")
    context = {
        "images": [(image, public_url(image)) for image in images],
        "max_size": size_label(media.MAX_BYTES),
        "max_width": media.MAX_WIDTH,
        "error": error,
    }
    return render(request, "campaigns/media.html", context, status=status)


@customer_required
def media_library(request: HttpRequest) -> HttpResponse:
    return _library(request)


def _too_large(request: HttpRequest) -> HttpResponse:
    error = _("The file is larger than the limit of %(limit)s for images: nothing was stored.") % {
        "limit": size_label(media.MAX_BYTES)
    }
    return _library(request, error=error, status=413)


@customer_required
@csrf_exempt
def media_upload(request: HttpRequest) -> HttpResponse:
    """Upload handlers must be set before the body is read, hence CSRF checked below."""
    if request.method != "POST":
        return redirect("campaigns:media")
    account_of(request)
    if declared_length(request) > media.MAX_BYTES + FORM_ENVELOPE:
        return _too_large(request)
    handler = ImageUploadHandler(request)
    request.upload_handlers = [handler]
    return _receive(request, handler)


@csrf_protect
def _receive(request: HttpRequest, handler: ImageUploadHandler) -> HttpResponse:
    upload = request.FILES.get("image")
    if handler.too_large:
        return _too_large(request)
    if upload is None:
        messages.error(request, _("Choose an image to upload."))
        return redirect("campaigns:media")
    try:
        image = media.upload_image(
            account_of(request), name=upload.name or "", data=upload.read(), by=_user(request)
        )
    except media.MediaRejected as error:
        messages.error(request, str(error))
        return redirect("campaigns:media")
    messages.success(
        request,
        _("Added %(name)s (%(width)s by %(height)s pixels).")
        % {"name": image.name, "width": image.width, "height": image.height},
    )
    return redirect("campaigns:media")


@customer_required
@require_POST
def media_delete(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(MediaImage, account=account_of(request), pk=pk)
    media.delete_image(image, by=_user(request))
    messages.success(request, _("Deleted %(name)s.") % {"name": image.name})
    return redirect("campaigns:media")


def media_file(request: HttpRequest, key: str, name: str) -> HttpResponse:
    """An image at its public address; the name is for people, the key finds it."""
    image = MediaImage.objects.filter(key=key).first()
    if image is None or request.method not in ("GET", "HEAD"):
        raise Http404
    response = HttpResponse(bytes(image.data), content_type=image.content_type)
    response["Content-Security-Policy"] = IMAGE_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Content-Disposition"] = f'inline; filename="{image.name}"'
    return response
