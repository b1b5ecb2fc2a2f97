"""Writing contacts to CSV, XLSX or XLS with constant memory, from any queryset.

`export_contacts(queryset, fmt, path)` takes a queryset of Contact, so the whole
audience, a list, a search or a segment all export the same way. Contacts are read in
batches by primary key (keyset, never OFFSET) and written as they come: CSV with the
csv module, XLSX with XlsxWriter in constant-memory mode, XLS with xlwt, which starts a
new sheet every 65,535 rows (the format's limit) and flushes each batch of rows into its
compact binary form. Every text cell is neutralised against formula injection.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection
from django.db.models import CharField, F, Func, OuterRef, QuerySet, Subquery, Value

from tidings.audience.models import Contact, Subscription
from tidings.transfer.neutralise import neutralise

BATCH = 5_000
MAX_ATTRIBUTE_COLUMNS = 200
CELL_MAX = 32_767  # the longest text a cell holds in XLSX and XLS
XLSX_SHEET_ROWS = 1_048_575  # data rows per sheet, after the header row
XLS_SHEET_ROWS = 65_535
FIELDS = [
    "pk", "email", "name", "status", "tags", "legal_basis", "basis_at", "source",
    "created_at", "attributes",
]  # fmt: skip
HEADER = [
    "email", "name", "status", "lists", "tags", "legal_basis", "basis_at", "source",
    "created_at",
]  # fmt: skip


def export_contacts(contacts: QuerySet[Contact], fmt: str, path: Path) -> int:
    """Write `contacts` to `path` as csv, xlsx or xls; the number of contacts written."""
    keys = attribute_keys(contacts)
    header = HEADER + keys + (["other_attributes"] if len(keys) == MAX_ATTRIBUTE_COLUMNS else [])
    sinks: dict[str, type[CsvSink | XlsxSink | XlsSink]] = {
        "csv": CsvSink,
        "xlsx": XlsxSink,
        "xls": XlsSink,
    }
    sink = sinks[fmt](path, header)
    n = 0
    try:
        for batch in contact_rows(contacts, keys):
            sink.write(batch)
            n += len(batch)
    finally:
        sink.close()
    return n


def attribute_keys(contacts: QuerySet[Contact]) -> list[str]:
    """The attribute names used by these contacts, sorted (at most MAX_ATTRIBUTE_COLUMNS)."""
    plain = contacts.order_by()
    if connection.vendor == "postgresql":
        keys = (
            plain.annotate(
                key=Func(F("attributes"), function="jsonb_object_keys", output_field=CharField())
            )
            .values_list("key", flat=True)
            .distinct()
        )
        return sorted(keys)[:MAX_ATTRIBUTE_COLUMNS]
    found: set[str] = set()
    for attributes in plain.values_list("attributes", flat=True).iterator(chunk_size=BATCH):
        found.update(attributes or {})
    return sorted(found)[:MAX_ATTRIBUTE_COLUMNS]


def contact_rows(contacts: QuerySet[Contact], keys: Sequence[str]) -> Iterator[list[list[Any]]]:
    """Batches of rows (neutralised), in primary-key order."""
    overflow = len(keys) == MAX_ATTRIBUTE_COLUMNS
    known = set(keys)
    on_postgres = connection.vendor == "postgresql"
    if on_postgres:
        # PostgreSQL formats the dates and gathers each contact's lists in its own
        # process, which runs beside this one: the second core does that work.
        contacts = contacts.annotate(
            basis_text=_utc_text("basis_at"),
            created_text=_utc_text("created_at"),
            lists_text=Subquery(
                Subscription.objects.filter(
                    contact_id=OuterRef("pk"), status=Subscription.Status.CONFIRMED
                )
                .values("contact_id")
                .annotate(
                    names=StringAgg("mailing_list__name", ", ", order_by="mailing_list__name")
                )
                .values("names")
            ),
        )
        fields = [*FIELDS[:6], "basis_text", "source", "created_text", "attributes", "lists_text"]
    else:
        fields = FIELDS
    last = 0
    while True:
        batch = list(contacts.filter(pk__gt=last).order_by("pk").values_list(*fields)[:BATCH])
        if not batch:
            return
        last = batch[-1][0]
        if not on_postgres:
            lists = _lists_of([row[0] for row in batch])
            batch = [(*row, lists.get(row[0], "")) for row in batch]
        rows = []
        for _, email, name, status, tags, basis, basis_at, source, created, attrs, names in batch:
            attrs = attrs or {}
            row = [
                neutralise(email),
                neutralise(name),
                status,
                neutralise(names) if names else "",
                neutralise(", ".join(tags)) if tags else "",
                basis,
                _when(basis_at),
                source,
                _when(created),
                *[_value(attrs.get(k, "")) for k in keys],
            ]
            if overflow:
                rest = {k: v for k, v in attrs.items() if k not in known}
                row.append(neutralise(json.dumps(rest, ensure_ascii=False)) if rest else "")
            rows.append(row)
        yield rows


def _utc_text(field: str) -> Func:
    return Func(
        F(field),
        Value("YYYY-MM-DD HH24:MI:SS"),
        function="to_char",
        template="%(function)s(%(expressions)s)",
        output_field=CharField(),
    )


def _lists_of(ids: list[int]) -> dict[int, str]:
    names: dict[int, list[str]] = defaultdict(list)
    for contact_id, name in (
        Subscription.objects.filter(contact_id__in=ids, status=Subscription.Status.CONFIRMED)
        .order_by("mailing_list__name")
        .values_list("contact_id", "mailing_list__name")
    ):
        names[contact_id].append(name)
    return {pk: ", ".join(n) for pk, n in names.items()}


def _when(value: datetime | str | None) -> str:
    """UTC, to the second, as PostgreSQL's to_char above writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value or ""


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool | int | float) or value is None:
        return value if value is not None else ""
    return neutralise(json.dumps(value, ensure_ascii=False))


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > CELL_MAX:
        return value[: CELL_MAX - 1] + "…"
    return value


class CsvSink:
    def __init__(
        self, path: Path, header: list[str], title: str = "", sheet_rows: int | None = None
    ) -> None:
        # With a BOM, so that Excel reads the file as UTF-8; LibreOffice does either way.
        self.handle = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.handle)
        self.writer.writerow(header)

    def write(self, rows: list[list[Any]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        self.handle.close()


class _SheetSink:
    """Rows across as many sheets as the format's row limit needs, header on each."""

    sheet_rows = XLSX_SHEET_ROWS

    def __init__(self, header: list[str], title: str, sheet_rows: int | None) -> None:
        self.header = header
        # Sheet names hold at most 31 characters; room is left for " 123".
        self.title = title[:26]
        if sheet_rows is not None:
            self.sheet_rows = min(sheet_rows, self.sheet_rows)
        self.row = self.sheet_rows + 1  # start a sheet on the first row
        self.sheets = 0

    def write(self, rows: list[list[Any]]) -> None:
        write_row = self._write_row
        for values in rows:
            if self.row > self.sheet_rows:
                self.sheets += 1
                self._new_sheet(self.title if self.sheets == 1 else f"{self.title} {self.sheets}")
                self._write_row(0, self.header)
                self.row = 1
            write_row(self.row, [_clip(v) for v in values])
            self.row += 1
        self._flush()

    def _new_sheet(self, title: str) -> None:
        raise NotImplementedError

    _write_row: Callable[[int, list[Any]], None]

    def _flush(self) -> None:
        pass


class XlsxSink(_SheetSink):
    def __init__(
        self, path: Path, header: list[str], title: str = "Contacts", sheet_rows: int | None = None
    ) -> None:
        import xlsxwriter

        super().__init__(header, title, sheet_rows)
        # Constant memory: each row goes to disk once the next begins. Strings are never
        # read as formulas, numbers or links: a cell holds exactly the contact's value.
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "tmpdir": str(path.parent),
            },
        )
        self.sheet: Any = None

    def _new_sheet(self, title: str) -> None:
        self.sheet = self.book.add_worksheet(title)

    def _write_row(self, row: int, values: list[Any]) -> None:
        self.sheet.write_row(row, 0, values)

    def close(self) -> None:
        if self.sheet is None:
            self._new_sheet(self.title)
            self._write_row(0, self.header)
        self.book.close()


class XlsSink(_SheetSink):
    sheet_rows = XLS_SHEET_ROWS

    def __init__(
        self, path: Path, header: list[str], title: str = "Contacts", sheet_rows: int | None = None
    ) -> None:
        import xlwt

        super().__init__(header, title, sheet_rows)
        self.path = path
        self.book = xlwt.Workbook(encoding="utf-8")
        self.sheet: Any = None

    def _new_sheet(self, title: str) -> None:
        self.sheet = self.book.add_sheet(title)

    def _write_row(self, row: int, values: list[Any]) -> None:
        write = self.sheet.write
        for col, value in enumerate(values):
            if value != "":
                write(row, col, value)

    def _flush(self) -> None:
        # xlwt keeps the whole workbook until it saves; flushing turns the rows written
        # so far into their compact binary records instead of Python objects per cell.
        self.sheet.flush_row_data()

    def close(self) -> None:
        if self.sheet is None:
            self._new_sheet(self.title)
            self._write_row(0, self.header)
        self.book.save(str(self.path))
