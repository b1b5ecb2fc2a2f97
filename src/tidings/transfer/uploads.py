"""A Django upload handler that streams the import file straight to its place on disk
and stops at the size limit (nothing stays on disk then, nothing is kept in memory).
A file it stored that no import claimed by the end of the request is deleted by the view
(`discard_unclaimed`); one left by a killed process is swept later (services)."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from tidings.transfer.errors import UploadTooLarge
from tidings.transfer.models import transfer_path
from tidings.transfer.services import UploadWriter


class StoredUpload(UploadedFile):
    """The upload, already on disk under the transfer directory."""

    def __init__(self, name: str, relative: str, size: int) -> None:
        super().__init__(file=None, name=name, size=size)
        self.relative = relative


class ImportUploadHandler(FileUploadHandler):
    field = "file"

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.writer: UploadWriter | None = None
        self.error = ""
        self.stored = ""  # the file written, relative to the transfer directory
        self.claimed = False  # set by the view once an import owns the file

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name == self.field and self.writer is None and not self.error:
            self.writer = UploadWriter()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.field_name != self.field or self.writer is None:
            return None  # any other file field is dropped
        try:
            self.writer.write(raw_data)
        except UploadTooLarge as error:
            self.writer = None
            self.error = str(error)
            # Read and drop the rest of the request, so the browser gets our answer.
            raise StopUpload(connection_reset=False) from None
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self.field_name != self.field or self.writer is None:
            return None
        relative, size = self.writer.finish()
        self.writer = None
        self.stored = relative
        return StoredUpload(self.file_name or "upload", relative, size)

    def upload_interrupted(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def discard_unclaimed(self) -> None:
        """Delete what this request wrote unless an import now owns it: a request refused
        after its body was stored (CSRF is checked on the parsed form), or one that
        failed half-way, leaves nothing on disk."""
        self.upload_interrupted()
        if self.stored and not self.claimed:
            transfer_path(self.stored).unlink(missing_ok=True)
            self.stored = ""
