"""The customer's "all my data" archive (P20), written from the data map.

One zip file: one file per table (CSV, XLSX or XLS) and a README.txt that explains every
file and column, read from the data map (purpose, legal basis, retention) and the
models (field names and their verbose names). The tables are every data-map entry of
the customer that goes in the archive (`Entry.in_archive`) and every table of
application data (`declare_free_of_personal_data(..., account_path=...)`). Rows are read
over a server-side cursor and written as they come, each table to a file of its own
that goes into the zip and is then removed: memory and scratch space stay bounded by
one batch and one table, whatever the size of the account.

Encrypted fields are written decrypted (the data is the customer's own); secrets
(password hashes, key digests, private keys, TOTP seeds) are never written.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import CharField, F, Func, Value
from django.utils import timezone
from django.utils.text import capfirst, slugify

from tidings.accounts.models import Account
from tidings.core import datamap
from tidings.core.datamap import plain
from tidings.core.spreadsheets import FORMULA_NOTE, SINKS, CsvSink, XlsSink, XlsxSink

# Rows fetched per round trip of the server-side cursor, and written per call to a sink.
BATCH = 5_000


@dataclass(frozen=True)
class Table:
    """One file (or, for a long XLS table, several) of the archive."""

    name: str  # file name without extension, e.g. "contacts"
    model: type[models.Model]
    rows: models.QuerySet[Any]
    fields: list[models.Field[Any, Any]]
    about: list[str]  # what the README says about the table

    @property
    def title(self) -> str:
        return capfirst(_plural(self.model))


def _plural(model: type[models.Model]) -> str:
    """ "campaign lists" for the table Django makes behind Campaign.lists, the model's
    plural name otherwise."""
    owner: Any = model._meta.auto_created  # the model with the ManyToManyField, or False
    if owner:
        for field in owner._meta.many_to_many:
            if field.remote_field.through is model:
                return f"{owner._meta.verbose_name} {field.name}"
    return str(model._meta.verbose_name_plural)


def tables_for(account: Account) -> list[Table]:
    """Every table of the account's archive, in the data map's order."""
    tables: list[Table] = []
    names: set[str] = set()

    def add(model: type[models.Model], rows: models.QuerySet[Any], secrets: tuple[str, ...],
            about: list[str]) -> None:  # fmt: skip
        name = slugify(_plural(model))
        if name in names:
            name = f"{model._meta.app_label}-{name}"
        names.add(name)
        hidden = set(secrets) | datamap.SECRET_FIELD_NAMES
        fields = [f for f in model._meta.concrete_fields if f.name not in hidden]
        tables.append(Table(name, model, rows, fields, about))

    for entry in datamap.customer_entries():
        if not entry.in_archive:
            continue
        about = [
            f"What it is: {entry.category}.",
            f"Why we keep it: {plain(entry.purpose)}.",
            f"Legal basis: {entry.legal_basis}.",
            f"How long: {plain(entry.retention)}.",
        ]
        if entry.description:
            about.append(str(entry.description))
        add(entry.model, entry.customer_rows(account), entry.secret_fields, about)
    for table in datamap.application_data():
        about = [
            "What it is: your application data (settings and content you made).",
            f"Personal data: none ({table.reason}).",
            "How long: as long as your account; erased with it.",
        ]
        add(table.model, table.queryset_for(account), table.secret_fields, about)
    return tables


def write_archive(
    account: Account, fmt: str, path: Path, *, heartbeat: Callable[[], None] = lambda: None
) -> dict[str, int]:
    """Write the account's archive to `path` (a zip); the rows written per table.
    `heartbeat` is called after each batch of rows (the job's lease)."""
    if fmt not in SINKS:
        raise ValueError(f"unknown format {fmt!r}")
    workdir = path.parent / f"{path.name}.tables"
    workdir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for table in tables_for(account):
                written, names = _write_table(table, fmt, workdir, archive, heartbeat)
                counts[table.name] = written
                files[table.name] = names
            folders: dict[str, tuple[str, int]] = {}
            for folder, about, source in datamap.archive_files():
                written = 0
                for name, data in source(account):
                    archive.writestr(f"{folder}/{name}", data)
                    written += 1
                    heartbeat()
                folders[folder] = (about, written)
            archive.writestr("README.txt", readme(account, fmt, counts, files, folders))
    finally:
        for leftover in workdir.glob("*"):
            leftover.unlink()
        workdir.rmdir()
    return counts


def _write_table(
    table: Table,
    fmt: str,
    workdir: Path,
    archive: zipfile.ZipFile,
    heartbeat: Callable[[], None],
) -> tuple[int, list[str]]:
    """Write one table as one file, or for XLS as several once a file holds
    ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE sheets (xlwt keeps a workbook in memory)."""
    header = [f.attname for f in table.fields]
    sheet_rows = settings.ACCOUNT_EXPORT_XLS_SHEET_ROWS if fmt == "xls" else None
    per_file = (
        settings.ACCOUNT_EXPORT_XLS_SHEET_ROWS * settings.ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE
        if fmt == "xls"
        else None
    )
    # XLSX is a zip already: storing it again costs time and saves nothing.
    compression = zipfile.ZIP_STORED if fmt == "xlsx" else zipfile.ZIP_DEFLATED
    names: list[str] = []
    written = 0
    in_file = 0
    sink: CsvSink | XlsxSink | XlsSink | None = None
    current: Path | None = None

    def close() -> None:
        assert sink is not None and current is not None
        sink.close()
        archive.write(current, arcname=current.name, compress_type=compression)
        current.unlink()

    def start() -> None:
        nonlocal sink, current, in_file
        n = len(names) + 1
        current = workdir / (f"{table.name}.{fmt}" if n == 1 else f"{table.name}-{n}.{fmt}")
        names.append(current.name)
        sink = SINKS[fmt](current, header, title=table.title, sheet_rows=sheet_rows)
        in_file = 0

    start()
    for batch in table_rows(table):
        while batch:
            if per_file is not None and in_file >= per_file:
                close()
                start()
            room = len(batch) if per_file is None else per_file - in_file
            part, batch = batch[:room], batch[room:]
            assert sink is not None
            sink.write(part)
            in_file += len(part)
            written += len(part)
        heartbeat()
    close()
    return written, names


def table_rows(table: Table) -> Iterator[list[list[Any]]]:
    """Batches of cells, in primary-key order, over a server-side cursor."""
    rows = table.rows
    convert = [_converter(f) for f in table.fields]
    columns = [f.attname for f in table.fields]
    if connection.vendor == "postgresql":
        # PostgreSQL writes the dates as text, in its own process, beside this one:
        # parsing them into Python datetimes only to format them again costs more.
        for i, f in enumerate(table.fields):
            if isinstance(f, models.DateTimeField):
                columns[i] = f"utc_text_{i}"
                rows = rows.annotate(**{columns[i]: _utc_text(f.attname)})
                convert[i] = _text
    cursor = rows.order_by("pk").values_list(*columns).iterator(chunk_size=BATCH)
    batch: list[list[Any]] = []
    for values in cursor:
        batch.append([c(v) for c, v in zip(convert, values, strict=True)])
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField):
        return _when
    if isinstance(field, models.JSONField):
        return _json
    if isinstance(field, models.BooleanField):
        return _yes_no
    return _cell


def _utc_text(field: str) -> Func:
    """The moment as "YYYY-MM-DD HH:MM:SS" in UTC (Django's sessions are in UTC)."""
    return Func(
        F(field),
        Value("YYYY-MM-DD HH24:MI:SS"),
        function="to_char",
        template="%(function)s(%(expressions)s)",
        output_field=CharField(),
    )


def _text(value: str | None) -> str:
    return value or ""


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _json(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def readme(
    account: Account,
    fmt: str,
    counts: dict[str, int],
    files: dict[str, list[str]],
    folders: dict[str, tuple[str, int]] | None = None,
) -> str:
    """The archive's README.txt: every file and every column, explained."""
    operator = settings.OPERATOR
    lines = [
        f"All the data {operator['name']} holds on your account",
        "=" * 60,
        "",
        f"Account: {account.name} (#{account.pk})",
        f"Made: {timezone.now().astimezone(UTC):%Y-%m-%d %H:%M} UTC, format {fmt.upper()}",
        "",
        "Each file below is one table of what we hold: the personal data we hold on you and",
        "your users, and all your application data (contacts, lists, campaigns, deliveries...).",
        "The first row of each file names the columns; they are explained below.",
        "Dates and times are in UTC. Columns ending in _id refer to the id column of another",
        "file (account_id to accounts, contact_id to contacts, and so on).",
        "Fields we encrypt at rest (phone, postal address, billing address) are written in",
        "clear: this is your own data. Secrets are never written, not even for you: password",
        "hashes, API key digests, two-factor seeds, DKIM private keys, relay passwords, and",
        "the keyed fingerprints of suppressed addresses.",
        *textwrap.wrap(FORMULA_NOTE[fmt], 88),
    ]
    if fmt == "xls":
        lines += [
            f"XLS sheets hold at most {settings.ACCOUNT_EXPORT_XLS_SHEET_ROWS:,} rows: a longer",
            'table continues on the next sheet ("Contacts 2", ...), each with the header row,',
            f"and after {settings.ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE} sheets in the next file",
            '("contacts-2.xls", ...).',
        ]
    lines += [
        "",
        f"Questions: {operator['privacy_contact_name']}, {operator['privacy_email']}.",
        "",
    ]
    for table in tables_for(account):
        names = files.get(table.name, [f"{table.name}.{fmt}"])
        lines += [
            "-" * 60,
            f"{', '.join(names)}: {table.title} ({counts.get(table.name, 0):,} rows)",
            "-" * 60,
            *table.about,
            "Columns:",
        ]
        for f in table.fields:
            label = str(f.verbose_name)
            help_text = f" ({f.help_text})" if f.help_text else ""
            lines.append(f"  {f.attname}: {label}{help_text}")
        lines.append("")
    for folder, (about, written) in (folders or {}).items():
        lines += ["-" * 60, f"{folder}/: {about} ({written:,} files)", "-" * 60, ""]
    return "\n".join(str(line) for line in lines)
