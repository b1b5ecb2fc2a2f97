"""Imports and exports of the customer's contacts: the jobs, their files and their progress.

Files live under `settings.TRANSFER_DIR`; a row names its files by a path relative to that
directory. Deleting a row deletes its files (see `signals.py`), so the erasure of an
account, which deletes these rows through the data map, leaves no file behind.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.transfer.readers import FileInfo


def transfer_path(relative: str) -> Path:
    """The absolute path of a file named by a job row."""
    return Path(settings.TRANSFER_DIR) / relative


class ImportJob(models.Model):
    """One uploaded file on its way into the audience: mapping, legal basis, progress."""

    class Status(models.TextChoices):
        # The upload is read in the worker (format, columns, limits): never in the request.
        ANALYSING = "analysing", _("analysing the file")
        UPLOADED = "uploaded", _("waiting for the column mapping")
        MAPPED = "mapped", _("waiting for the legal basis")
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("importing")
        DONE = "done", _("finished")
        FAILED = "failed", _("failed")

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        XLSX = "xlsx", _("Excel (XLSX)")
        XLS = "xls", _("Excel 97-2003 (XLS)")

    class Mode(models.TextChoices):
        ADD = "add", _("add new contacts only (existing ones are left as they are)")
        UPDATE = "update", _("add new contacts and update existing ones")

    class Basis(models.TextChoices):
        CONSENT = "consent", _("consent, collected elsewhere")
        CONTRACT = "contract", _("contract (they are our customers)")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.UPLOADED)
    # The upload, as the customer named it, and where it is stored until the import ends.
    original_name = models.CharField(max_length=255)
    upload_file = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    format = models.CharField(max_length=4, choices=Format.choices)
    # What the analysis found: text encoding and delimiter (CSV), and the header row.
    encoding = models.CharField(max_length=32, blank=True, default="")
    delimiter = models.CharField(max_length=1, blank=True, default="")
    has_header = models.BooleanField(default=True)
    columns = models.JSONField(default=list)
    # The first rows, for the mapping page (read by the analysis, so no web request opens
    # the file); emptied when the import starts.
    preview = models.JSONField(default=list, blank=True)
    # Which column goes where: one target per column, see importer.TARGETS.
    mapping = models.JSONField(default=list)
    # The type of each column imported as an attribute ("text", "number", "date",
    # "boolean"; audience.attribute_types): guessed by the analysis from the first rows,
    # changed on the mapping page, declared for the account when the import starts.
    types = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ADD)
    list_ids = models.JSONField(default=list)
    # The legal basis the customer stated for the whole file (P2).
    legal_basis = models.CharField(max_length=16, choices=Basis.choices, blank=True)
    basis_at = models.DateTimeField(null=True, blank=True)
    statement = models.CharField(max_length=400, blank=True, default="")
    # Progress and checkpoint: rows_done data rows are written and committed, together
    # with report_size bytes of the rejected-rows report. A re-run starts from there.
    stamp = models.DateTimeField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text=_("per mille"))
    counts = models.JSONField(default=dict)
    report_file = models.CharField(max_length=255, blank=True, default="")
    report_size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # A worker holds the job until this moment; another may take over after it.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the report (and an upload never imported) is deleted.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="importjob_account")]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> float:
        return self.progress / 10

    @property
    def file_info(self) -> FileInfo:
        return FileInfo(
            format=self.format,
            encoding=self.encoding,
            delimiter=self.delimiter,
            has_header=self.has_header,
            columns=list(self.columns),
        )

    def count(self, key: str) -> int:
        return int(self.counts.get(key, 0))

    @property
    def refused(self) -> int:
        """Rows the report lists: rejected, skipped and duplicates."""
        return sum(self.count(k) for k in ("rejected", "skipped", "duplicates"))


class ImportMapping(models.Model):
    """The last column mapping an account used, to suggest it again next time."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="import_mapping"
    )
    # Normalised column header -> target, e.g. {"e-mail": "email", "city": "attribute:city"}.
    targets = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"import mapping of account {self.account_id}"


class ExportJob(models.Model):
    """A file of contacts built in the background, downloadable until it expires."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("being built")
        DONE = "done", _("ready")
        FAILED = "failed", _("failed")

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        XLSX = "xlsx", _("Excel (XLSX)")
        XLS = "xls", _("Excel 97-2003 (XLS, several sheets past 65,535 rows)")

    class Scope(models.TextChoices):
        ALL = "all", _("the whole audience")
        LIST = "list", _("one list")
        SEARCH = "search", _("a search")
        SEGMENT = "segment", _("a segment")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="export_jobs"
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    format = models.CharField(max_length=4, choices=Format.choices)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.ALL)
    # The scope's parameters: {"list": id}, {"q": "...", "status": "..."} or
    # {"segment": id}.
    criteria = models.JSONField(default=dict)
    description = models.CharField(max_length=300, blank=True, default="")
    file = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="exportjob_account")]

    def __str__(self) -> str:
        return f"export #{self.pk} ({self.format})"

    @property
    def filename(self) -> str:
        stamp = (self.finished_at or self.created_at).strftime("%Y%m%d-%H%M")
        return f"contacts-{stamp}-{self.pk}.{self.format}"
